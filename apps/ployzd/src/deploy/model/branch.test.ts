/**
 * Branch and promote decisions as pure functions: the hostname rule, the manifest a branch deploys
 * (source revisions, overrides, volumes cloned or empty), its lineage, where the data of each slot
 * comes from, and the promote's manifest back into the source.
 */
import { fixtures } from '@ployz/testkit';
import {
  isPloyzError,
  type Manifest,
  type RouteSpec,
  type ServiceSpec,
  type VolumeRecord,
  type VolumeSpec,
} from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { capacityOf, machine, testCodec } from '../../../test/fakes/sample-records.ts';
import {
  type BranchInput,
  branchHostname,
  type CommittedSpec,
  checkHostSuffix,
  dataFor,
  dataPlanLines,
  type PromoteInput,
  planBranch,
  planPromote,
  unbranchHostname,
} from './branch.ts';
import { committedService } from './commits.ts';
import { planDeploy } from './plan.ts';

const AT = '2026-01-01T00:00:00.000Z';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isPloyzError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a PloyzError');
}

const http = (hostnames: string[], path = '/'): RouteSpec => ({
  kind: 'http',
  hostnames,
  path,
  port: 'http',
});

function spec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return { ...fixtures.serviceSpec({ namespace: 'shop', name }), env: { TOKEN: `t-${name}` }, ...over };
}

const vol = (name: string, over: Partial<VolumeSpec> = {}): VolumeSpec => ({
  name,
  quota_bytes: null,
  scope: 'single',
  owner: null,
  mode: null,
  keep_snapshots: 10,
  ...over,
});

function record(volume: string, over: Partial<VolumeRecord> = {}): VolumeRecord {
  const name = over.slot === undefined || over.slot === null ? volume : `${volume}-${over.slot}`;
  return {
    namespace: 'shop',
    name,
    volume,
    slot: null,
    scope: 'single',
    machine: 'm1',
    driver: 'btrfs',
    dataset: `/v/shop/${name}`,
    quota_bytes: null,
    owner: null,
    mode: null,
    keep_snapshots: 10,
    created_by: 'dep-01',
    status: 'active',
    snapshots: [
      { deploy_id: 'dep-01', commit_id: 'dep-01.final', id: `${name}-uuid-1`, at: AT, bytes: 10 },
      { deploy_id: 'dep-02', commit_id: 'dep-02.final', id: `${name}-uuid-2`, at: AT, bytes: 1 << 30 },
    ],
    pending: null,
    updated_at: AT,
    ...over,
  };
}

const web = spec('web', {
  routes: [http(['shop.example.com', '*.cdn.example.com']), { kind: 'tcp', listen: 7000, port: 'http' }],
  mounts: [{ kind: 'volume', volume: 'data', target: '/data', read_only: false }],
});
const worker = spec('worker', {
  mounts: [{ kind: 'volume', volume: 'cache', target: '/cache', read_only: false }],
});
const committed = (s: ServiceSpec, revision: string, deploy: string): CommittedSpec => ({
  spec: s,
  revision,
  deploy,
  slots: [{ slot: 0, machine: 'm1', instance: `${s.name}-0` }],
});

function branchInput(over: Partial<BranchInput> = {}): BranchInput {
  return {
    source: 'shop',
    destination: 'shop-pr-7',
    services: [
      committed(web, 'rev-aaaaaaaaaaaaaaaa', 'dep-02'),
      committed(worker, 'rev-bbbbbbbbbbbbbbbb', 'dep-01'),
    ],
    volumes: [vol('data', { quota_bytes: 2 << 30 }), vol('cache')],
    records: [record('data'), record('cache')],
    override: null,
    volumeModes: {},
    hostSuffix: 'pr-7',
    ...over,
  };
}

describe('the hostname rule', () => {
  it('puts the suffix in front as the new leftmost label, after a wildcard', () => {
    expect(branchHostname('shop.example.com', 'pr-7')).toBe('pr-7.shop.example.com');
    expect(branchHostname('*.example.com', 'pr-7')).toBe('*.pr-7.example.com');
    expect(branchHostname('shop.localhost', 'a.b')).toBe('a.b.shop.localhost');
  });

  it('takes it off again, and says null for a hostname without it', () => {
    expect(unbranchHostname('pr-7.shop.example.com', 'pr-7')).toBe('shop.example.com');
    expect(unbranchHostname('*.pr-7.example.com', 'pr-7')).toBe('*.example.com');
    expect(unbranchHostname('preview.example.com', 'pr-7')).toBeNull();
    expect(unbranchHostname('pr-70.example.com', 'pr-7')).toBeNull();
  });

  it('refuses a suffix that is not DNS labels, and a hostname it would make too long', () => {
    expect(checkHostSuffix('PR-7')).toBe('pr-7');
    for (const bad of ['', '-x', 'a..b', 'a_b', 'x.', `${'a'.repeat(64)}`]) {
      expect(
        codeOf(() => checkHostSuffix(bad)),
        bad,
      ).toBe('BRANCH_HOST_SUFFIX_INVALID');
    }
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.example.com`;
    expect(codeOf(() => branchHostname(long, 'd'.repeat(63)))).toBe('BRANCH_HOST_SUFFIX_INVALID');
  });
});

describe('planBranch', () => {
  it("runs the source's revisions in the branch namespace with its own hostnames, and records where each came from", () => {
    const d = planBranch(branchInput());
    expect(d.manifest.namespace).toBe('shop-pr-7');
    const branchWeb = d.manifest.services.find((s) => s.name === 'web');
    expect(branchWeb?.namespace).toBe('shop-pr-7');
    // Everything but the namespace and the routes is the source's spec, env included.
    expect({ ...branchWeb, namespace: 'shop', routes: web.routes }).toEqual(web);
    expect(branchWeb?.routes).toEqual([http(['pr-7.shop.example.com', '*.pr-7.cdn.example.com'])]);
    expect(d.routes.map((r) => [r.service, r.kind, r.from, r.to])).toEqual([
      [
        'web',
        'http',
        'shop.example.com/, *.cdn.example.com/',
        'pr-7.shop.example.com/, *.pr-7.cdn.example.com/',
      ],
      ['web', 'tcp', ':7000', null],
    ]);
    expect(d.lineage).toEqual({
      kind: 'branch',
      from_namespace: 'shop',
      from_deploy: 'dep-02',
      host_suffix: 'pr-7',
      services: [
        { service: 'web', from_revision: 'rev-aaaaaaaaaaaaaaaa', from_deploy: 'dep-02', overridden: false },
        {
          service: 'worker',
          from_revision: 'rev-bbbbbbbbbbbbbbbb',
          from_deploy: 'dep-01',
          overridden: false,
        },
      ],
    });
    expect(d.placeLike.web).toEqual([{ slot: 0, machine: 'm1', instance: 'web-0' }]);
    expect(d.volumes.map((v) => [v.volume, v.mode])).toEqual([
      ['cache', 'clone'],
      ['data', 'clone'],
    ]);
  });

  it('drops every route without --host-suffix: a branch without hostnames is fine', () => {
    const d = planBranch(branchInput({ hostSuffix: null }));
    expect(d.manifest.services.flatMap((s) => s.routes)).toEqual([]);
    expect(d.routes.every((r) => r.to === null)).toBe(true);
    expect(d.lineage.host_suffix).toBeNull();
  });

  it('takes services and volumes of the branch manifest over the source ones, and adds new ones', () => {
    const own = spec('web', { namespace: 'shop-pr-7', image: 'web:2', routes: [http(['pr.localhost'])] });
    const extra = spec('admin', { namespace: 'shop-pr-7' });
    const override: Manifest = {
      namespace: 'shop-pr-7',
      services: [own, extra],
      volumes: [vol('data', { quota_bytes: 4 << 30 }), vol('scratch')],
      phases: [],
    };
    const d = planBranch(branchInput({ override }));
    expect(d.manifest.services.find((s) => s.name === 'web')).toEqual(own);
    expect(d.manifest.services.find((s) => s.name === 'admin')).toEqual(extra);
    expect(d.lineage.services).toEqual([
      { service: 'web', from_revision: 'rev-aaaaaaaaaaaaaaaa', from_deploy: 'dep-02', overridden: true },
      { service: 'worker', from_revision: 'rev-bbbbbbbbbbbbbbbb', from_deploy: 'dep-01', overridden: false },
      { service: 'admin', from_revision: null, from_deploy: null, overridden: true },
    ]);
    // The manifest's own routes are its own; no route of web is rewritten from the source.
    expect(d.routes.filter((r) => r.service === 'web')).toEqual([]);
    expect(d.manifest.volumes.find((v) => v.name === 'data')?.quota_bytes).toBe(4 << 30);
    // A volume only the manifest declares starts empty; the source's are cloned.
    expect(d.volumes.map((v) => [v.volume, v.mode])).toEqual([
      ['cache', 'clone'],
      ['data', 'clone'],
      ['scratch', 'empty'],
    ]);
    // The source's slots of web place the branch's overridden web too.
    expect(Object.keys(d.placeLike).sort()).toEqual(['web', 'worker']);
  });

  it('refuses what it cannot branch, with stable codes', () => {
    expect(codeOf(() => planBranch(branchInput({ services: [] })))).toBe('BRANCH_SOURCE_UNKNOWN');
    const other: Manifest = { namespace: 'elsewhere', services: [], volumes: [], phases: [] };
    expect(codeOf(() => planBranch(branchInput({ override: other })))).toBe('BRANCH_MANIFEST_NAMESPACE');
    expect(codeOf(() => planBranch(branchInput({ volumeModes: { nope: 'empty' } })))).toBe(
      'BRANCH_VOLUME_UNKNOWN',
    );
    expect(codeOf(() => planBranch(branchInput({ volumeModes: { data: 'copy' } })))).toBe(
      'BRANCH_VOLUME_UNKNOWN',
    );
    expect(codeOf(() => planBranch(branchInput({ hostSuffix: 'pr_7' })))).toBe('BRANCH_HOST_SUFFIX_INVALID');
    // dir storage: no snapshot to clone, unless the volume starts empty.
    const dir = [record('data', { driver: 'dir', snapshots: [] }), record('cache')];
    expect(codeOf(() => planBranch(branchInput({ records: dir })))).toBe('BRANCH_NO_SNAPSHOT');
    expect(
      planBranch(branchInput({ records: dir, volumeModes: { data: 'empty' } })).volumes[1],
    ).toMatchObject({ volume: 'data', mode: 'empty' });
  });

  it('refuses two services of the branch on one hostname and path', () => {
    const clash = spec('admin', { namespace: 'shop-pr-7', routes: [http(['pr-7.shop.example.com'])] });
    const override: Manifest = { namespace: 'shop-pr-7', services: [clash], volumes: [], phases: [] };
    expect(codeOf(() => planBranch(branchInput({ override })))).toBe('MANIFEST_INVALID');
  });
});

describe('dataFor: the data of each slot of the planned branch', () => {
  const machines = [machine('m1'), machine('m2')];
  const plannedBranch = (input: BranchInput, capacity = capacityOf(machines)) => {
    const d = planBranch(input);
    const manifest = { ...testCodec().manifestOf(d.manifest), place_like: d.placeLike };
    const plan = planDeploy({
      manifest,
      revisions: new Map(manifest.services.map((s) => [s.name, testCodec().revisionId('shop-pr-7', s)])),
      releases: [],
      instances: [],
      machines,
      capacity,
      newInstanceId: (service, slot) => `${service}-${slot}-new`,
    });
    return { d, manifest, plan };
  };

  it("clones each volume from the source's snapshot at its last commit, on the source's machine", () => {
    const { d, manifest, plan } = plannedBranch(branchInput({ volumeModes: { cache: 'empty' } }));
    // The branch's slots start where the source's run (m1), not where the load is lowest.
    expect(plan.services.map((s) => s.slots.map((x) => x.machine))).toEqual([['m1'], ['m1']]);
    const { work, volumes } = dataFor(manifest, plan, d.volumes, 'shop');
    expect(work.map((w) => [w.kind, w.target.name, w.from.name, w.snapshot?.id, w.snapshot?.label])).toEqual([
      ['clone', 'data', 'data', 'data-uuid-2', 'dep-02'],
    ]);
    expect(volumes).toEqual([
      {
        volume: 'data',
        slot: null,
        data: 'clone',
        snapshot: {
          volume: 'data',
          slot: null,
          machine: 'm1',
          driver: 'btrfs',
          dataset: '/v/shop/data',
          id: 'data-uuid-2',
          label: 'dep-02',
          at: AT,
          bytes: 1 << 30,
        },
        previous: null,
      },
      { volume: 'cache', slot: null, data: 'empty', snapshot: null, previous: null },
    ]);
    const lines = dataPlanLines(
      [
        {
          volume: 'data',
          machine: 'm1',
          scope: 'single',
          action: 'snapshot',
          detail: 'snapshot at the commit',
        },
        {
          volume: 'cache',
          machine: 'm1',
          scope: 'single',
          action: 'snapshot',
          detail: 'snapshot at the commit',
        },
      ],
      work,
      { ...d.lineage, volumes },
    );
    expect(lines.map((l) => [l.volume, l.action])).toEqual([
      ['data', 'clone'],
      ['cache', 'empty'],
    ]);
    expect(lines[0]?.detail).toMatch(/copy-on-write clone of shop\/data at its snapshot at commit of dep-02/);
  });

  it('clones a per-slot volume slot by slot, and refuses a slot the source does not have', () => {
    const perSlot = spec('search', {
      placement: { mode: 'replicated', replicas: 2, regions: [] },
      mounts: [{ kind: 'volume', volume: 'index', target: '/i', read_only: false }],
    });
    const input = branchInput({
      services: [
        {
          ...committed(perSlot, 'rev-cccccccccccccccc', 'dep-02'),
          slots: [
            { slot: 0, machine: 'm1', instance: 's0' },
            { slot: 1, machine: 'm2', instance: 's1' },
          ],
        },
      ],
      volumes: [vol('index', { scope: 'per_slot' })],
      records: [
        record('index', { slot: 0, scope: 'per_slot' }),
        record('index', { slot: 1, scope: 'per_slot', machine: 'm2' }),
      ],
    });
    const { d, manifest, plan } = plannedBranch(input);
    const { work } = dataFor(manifest, plan, d.volumes, 'shop');
    expect(work.map((w) => [w.target.name, w.target.machine, w.snapshot?.id])).toEqual([
      ['index-0', 'm1', 'index-0-uuid-2'],
      ['index-1', 'm2', 'index-1-uuid-2'],
    ]);
    const onlyOne = { ...input, records: [record('index', { slot: 0, scope: 'per_slot' })] };
    const one = plannedBranch(onlyOne);
    expect(codeOf(() => dataFor(one.manifest, one.plan, one.d.volumes, 'shop'))).toBe('BRANCH_NO_SNAPSHOT');
  });

  it('refuses a clone whose slot is placed away from the data (the source machine is not eligible)', () => {
    const { d, manifest, plan } = plannedBranch(
      branchInput({ volumeModes: { cache: 'empty' } }),
      capacityOf([machine('m2')]),
    );
    expect(codeOf(() => dataFor(manifest, plan, d.volumes, 'shop'))).toBe('BRANCH_VOLUME_ELSEWHERE');
  });

  it("refuses a branch manifest that changes a cloned volume's owner", () => {
    const override: Manifest = {
      namespace: 'shop-pr-7',
      services: [],
      volumes: [vol('data', { owner: { uid: 1, gid: 1 } })],
      phases: [],
    };
    const input = branchInput({
      override,
      records: [record('data', { owner: { uid: 10001, gid: 10001 } }), record('cache')],
    });
    const { d, manifest, plan } = plannedBranch(input);
    expect(codeOf(() => dataFor(manifest, plan, d.volumes, 'shop'))).toBe('STORAGE_INVALID');
  });
});

describe('the commit of a branch', () => {
  it('names the source revision of each service that came from one', () => {
    const d = planBranch(branchInput());
    const lineage = { ...d.lineage, volumes: [] };
    const svc = (service: string) => ({
      service,
      action: 'create' as const,
      revision: 'rev-dddddddddddddddd',
      previous_revision: null,
      phase: 'default',
      slots: [{ slot: 0, machine: 'm1', instance: 'x', action: 'start' as const }],
      stops: [],
    });
    expect(committedService(svc('web'), lineage).source_revision).toBe('rev-aaaaaaaaaaaaaaaa');
    expect(committedService(svc('nope'), lineage).source_revision).toBeNull();
    expect(committedService(svc('web')).source_revision).toBeNull();
  });
});

describe('planPromote', () => {
  const branchWeb = spec('web', {
    namespace: 'shop-pr-7',
    image: 'web:2',
    routes: [http(['pr-7.shop.example.com'])],
    mounts: [{ kind: 'volume', volume: 'data', target: '/data', read_only: false }],
  });
  const branchNew = spec('search', {
    namespace: 'shop-pr-7',
    routes: [
      http(['pr-7.search.example.com', 'own.example.net']),
      { kind: 'tcp', listen: 7001, port: 'http' },
    ],
    mounts: [{ kind: 'volume', volume: 'index', target: '/i', read_only: false }],
  });
  const lineage = { ...planBranch(branchInput()).lineage, volumes: [] };
  const promoteInput = (over: Partial<PromoteInput> = {}): PromoteInput => ({
    branch: 'shop-pr-7',
    source: 'shop',
    branchServices: [
      committed(branchWeb, 'rev-eeeeeeeeeeeeeeee', 'dep-05'),
      committed(branchNew, 'rev-ffffffffffffffff', 'dep-06'),
    ],
    branchVolumes: [vol('data'), vol('index')],
    branchRecords: [record('data', { namespace: 'shop-pr-7' }), record('index', { namespace: 'shop-pr-7' })],
    branchLineage: lineage,
    sourceServices: [
      committed(web, 'rev-aaaaaaaaaaaaaaaa', 'dep-02'),
      committed(worker, 'rev-bbbbbbbbbbbbbbbb', 'dep-01'),
    ],
    sourceVolumes: [vol('data'), vol('cache')],
    sourceRecords: [record('data'), record('cache')],
    withData: false,
    ...over,
  });

  it("deploys the branch's services into the source with the source's hostnames; a service only the source has stays", () => {
    const d = planPromote(promoteInput());
    expect(d.manifest.namespace).toBe('shop');
    const promoted = new Map(d.manifest.services.map((s) => [s.name, s]));
    expect(promoted.get('web')).toEqual({ ...branchWeb, namespace: 'shop', routes: web.routes });
    expect(promoted.get('worker')).toEqual(worker);
    // A service new in the branch: the suffix comes off, the branch's own hostnames and tcp stay there.
    expect(promoted.get('search')?.routes).toEqual([http(['search.example.com'])]);
    expect(d.routes.filter((r) => r.service === 'search').map((r) => [r.from, r.to])).toEqual([
      ['pr-7.search.example.com/, own.example.net/', 'search.example.com/'],
      [':7001', null],
    ]);
    expect(d.lineage).toMatchObject({
      kind: 'promote',
      from_namespace: 'shop-pr-7',
      from_deploy: 'dep-06',
      host_suffix: 'pr-7',
      services: [
        {
          service: 'search',
          from_revision: 'rev-ffffffffffffffff',
          from_deploy: 'dep-06',
          overridden: false,
        },
        { service: 'web', from_revision: 'rev-eeeeeeeeeeeeeeee', from_deploy: 'dep-05', overridden: false },
      ],
    });
    // Without --with-data the source keeps its data; a volume it lacks starts empty.
    expect(d.volumes.map((v) => [v.volume, v.mode])).toEqual([
      ['data', 'kept'],
      ['index', 'empty'],
    ]);
  });

  it("with data replaces the source's volumes from the branch (a snapshot of it now) and clones those it lacks", () => {
    const d = planPromote(promoteInput({ withData: true }));
    expect(d.volumes.map((v) => [v.volume, v.mode, v.snapshotNow, v.from.map((r) => r.namespace)])).toEqual([
      ['data', 'replace', true, ['shop-pr-7']],
      ['index', 'clone', true, ['shop-pr-7']],
    ]);
  });

  it('refuses a namespace that is not a branch of that source', () => {
    expect(codeOf(() => planPromote(promoteInput({ branchLineage: null })))).toBe('PROMOTE_NOT_A_BRANCH');
    expect(codeOf(() => planPromote(promoteInput({ source: 'blog' })))).toBe('PROMOTE_NOT_A_BRANCH');
    expect(codeOf(() => planPromote(promoteInput({ branchServices: [] })))).toBe('BRANCH_SOURCE_UNKNOWN');
  });
});
