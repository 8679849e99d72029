/**
 * Branch and promote through the engine on the in-memory store, a scripted machine agent and an
 * in-memory volume agent (the real storage is src/storage/*.test.ts, the real daemon
 * e2e/test/branch.test.ts): the order of the data work (clone before the candidates start), the
 * lineage in every commit, the branch's volume records, a failure discarding the clone, and a
 * promote with data keeping what it replaced so a rollback restores it.
 */
import { type DeployCommit, PloyzError, parseManifest, type VolumeRecord } from '@ployz/types';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryDeployStore } from '../../test/fakes/memory-store.ts';
import { machine, testCodec } from '../../test/fakes/sample-records.ts';
import type { EngineOptions } from './context.ts';
import { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
import type { DeployEvent } from './model/events.ts';
import type { MachineAgent, StartRequest, VolumeAgent, VolumeRefOf } from './ports.ts';
import { systemClock } from './ports.ts';

interface FakeVolume {
  data: string[];
  snapshots: { id: string; label: string; data: string[] }[];
  origin: string | null;
}

/** Volumes as lists of lines: a start appends `<service>@<namespace>`, snapshots copy the list. */
class FakeVolumes implements VolumeAgent {
  readonly vols = new Map<string, FakeVolume>();
  readonly records = new Map<string, { value: VolumeRecord; revision: number }>();
  readonly calls: string[] = [];
  #n = 0;

  key(ns: string, ref: VolumeRefOf): string {
    return `${ns}/${ref.slot === null ? ref.volume : `${ref.volume}-${ref.slot}`}`;
  }
  vol(ns: string, ref: VolumeRefOf): FakeVolume {
    const v = this.vols.get(this.key(ns, ref));
    if (v === undefined) throw new PloyzError('NOT_FOUND', `no volume ${this.key(ns, ref)}`);
    return v;
  }
  #snap(v: FakeVolume, label: string) {
    const found = v.snapshots.find((s) => s.label === label);
    if (found) return found;
    const s = { id: `snap-${++this.#n}`, label, data: [...v.data] };
    v.snapshots.push(s);
    return s;
  }
  async snapshot(_m: string, ns: string, refs: readonly VolumeRefOf[], label: string) {
    this.calls.push(`snapshot ${refs.map((r) => this.key(ns, r)).join(',')} ${label}`);
    return {
      driver: 'btrfs' as const,
      snapshots: refs.map((r) => {
        const s = this.#snap(this.vol(ns, r), label);
        return {
          ...r,
          dataset: `/v/${this.key(ns, r)}`,
          snapshot: { id: s.id, label, created_at: '2026-01-01T00:00:00.000Z', bytes: 1 },
        };
      }),
    };
  }
  async revert(_m: string, ns: string, ref: VolumeRefOf, snapshotId: string) {
    this.calls.push(`revert ${this.key(ns, ref)} ${snapshotId}`);
    const v = this.vol(ns, ref);
    const target = v.snapshots.find((s) => s.id === snapshotId);
    if (!target) throw new PloyzError('NOT_FOUND', `no snapshot ${snapshotId}`);
    const pre = this.#snap(v, `pre-revert-${this.#n}`);
    v.data = [...target.data];
    return { preRevertId: pre.id };
  }
  async stopWriters(_m: string, ns: string, ref: VolumeRefOf) {
    this.calls.push(`stop ${this.key(ns, ref)}`);
    return [];
  }
  async startWriters() {}
  async prune(_m: string, ns: string, ref: VolumeRefOf, ids: readonly string[]) {
    const v = this.vol(ns, ref);
    v.snapshots = v.snapshots.filter((s) => !ids.includes(s.id));
    return { destroyed: [...ids], kept: [] };
  }
  async describe(): Promise<never> {
    throw new Error('not used');
  }
  async clone(
    _m: string,
    ns: string,
    ref: VolumeRefOf,
    from: VolumeRefOf & { namespace: string; snapshotId: string },
  ) {
    this.calls.push(`clone ${this.key(ns, ref)} ← ${from.snapshotId}`);
    const s = this.vol(from.namespace, from).snapshots.find((x) => x.id === from.snapshotId);
    if (!s) throw new PloyzError('NOT_FOUND', `no snapshot ${from.snapshotId}`);
    this.vols.set(this.key(ns, ref), { data: [...s.data], snapshots: [], origin: s.id });
    return { dataset: `/v/${this.key(ns, ref)}`, tookMs: 1 };
  }
  async replace(
    _m: string,
    ns: string,
    ref: VolumeRefOf,
    from: VolumeRefOf & { namespace: string; snapshotId: string },
  ) {
    this.calls.push(`replace ${this.key(ns, ref)} ← ${from.snapshotId}`);
    const s = this.vol(from.namespace, from).snapshots.find((x) => x.id === from.snapshotId);
    if (!s) throw new PloyzError('NOT_FOUND', `no snapshot ${from.snapshotId}`);
    const v = this.vol(ns, ref);
    const pre = this.#snap(v, `pre-revert-${this.#n}`);
    v.data = [...s.data];
    return { preRevertId: pre.id };
  }
  async discard(_m: string, ns: string, ref: VolumeRefOf, origin: string) {
    this.calls.push(`discard ${this.key(ns, ref)}`);
    const v = this.vols.get(this.key(ns, ref));
    if (v?.origin !== origin || v.snapshots.length > 0) return false;
    this.vols.delete(this.key(ns, ref));
    return true;
  }
  /** Retired volumes' final copies (namespace rm --delete-volumes), by `<ns>/<name>`. */
  readonly retired = new Map<string, { label: string; data: string[] }>();
  /** Called as a retire starts (the test checks the commit is there); throws to fail it. */
  onRetire: (key: string) => void = () => {};
  async retire(_m: string, ns: string, ref: VolumeRefOf, label: string) {
    const key = this.key(ns, ref);
    this.calls.push(`retire ${key} ${label}`);
    this.onRetire(key);
    const v = this.vols.get(key);
    if (v === undefined) return { retired: false, kept: null, snapshotId: null, note: '' };
    const final = this.#snap(v, label);
    this.retired.set(key, { label, data: [...final.data] });
    this.vols.delete(key);
    return { retired: true, kept: `/v/.retired/${key}-${label}`, snapshotId: final.id, note: 'read-only' };
  }
  async deleteRecord(namespace: string, name: string, expected: number) {
    const key = `${namespace}/${name}`;
    if (this.records.get(key)?.revision !== expected)
      throw new PloyzError('STORE_CONFLICT', `volumes/${key}`);
    this.records.delete(key);
  }
  async listRecords(namespace?: string) {
    return [...this.records.values()].filter(
      (r) => namespace === undefined || r.value.namespace === namespace,
    );
  }
  async getRecord(namespace: string, name: string) {
    return this.records.get(`${namespace}/${name}`) ?? null;
  }
  async putRecord(record: VolumeRecord, expected: number | null) {
    const key = `${record.namespace}/${record.name}`;
    const cur = this.records.get(key);
    if ((cur?.revision ?? null) !== expected) throw new PloyzError('STORE_CONFLICT', `volumes/${key}`);
    const revision = (cur?.revision ?? 0) + 1;
    this.records.set(key, { value: structuredClone(record), revision });
    return revision;
  }
}

/** Starts append to each mounted volume, which must exist unless this agent creates it (ensure). */
class Agent implements MachineAgent {
  readonly started: StartRequest[] = [];
  notReady = new Set<string>();
  constructor(private readonly volumes: FakeVolumes) {}
  async capacity() {
    return { cpus: 2, memory_free_mb: 4096, disk_free_mb: 1000 };
  }
  async start(req: StartRequest) {
    this.started.push(req);
    for (const v of req.service.volumes) {
      const key = `${req.namespace}/${v.name}`;
      const existing = this.volumes.vols.get(key) ?? { data: [], snapshots: [], origin: null };
      existing.data.push(`${req.service.env.VERSION}@${req.namespace}`);
      this.volumes.vols.set(key, existing);
      this.volumes.calls.push(`start ${req.namespace}/${req.service.name}`);
    }
    return { container_id: `c-${req.instance}`, ip: '10.210.0.9', name: `ployz-${req.instance}` };
  }
  async waitReady(_m: string, inst: { container_id: string }) {
    const req = this.started.find((s) => `c-${s.instance}` === inst.container_id);
    if (req && this.notReady.has(req.service.env.VERSION ?? '')) {
      throw new PloyzError('DEPLOY_READINESS_FAILED', `${req.service.name} never became ready`);
    }
  }
  async stop() {}
}

const manifestText = (namespace: string, version: string) => `
namespace = "${namespace}"
[[volumes]]
name = "data"
[[services]]
name = "web"
image = "web:1"
ports = { http = 8080 }
env = { VERSION = "${version}" }
mounts = [{ volume = "data", target = "/data" }]
[[services.routes]]
http = { hostnames = ["shop.example.com"], path = "/" }
`;

let store: MemoryDeployStore;
let volumes: FakeVolumes;
let agent: Agent;
let engine: DeployEngine;

beforeEach(() => {
  store = new MemoryDeployStore(systemClock);
  store.machines.set('m1', { ...machine('m1'), storage: { driver: 'btrfs', root: '/v' } });
  volumes = new FakeVolumes();
  agent = new Agent(volumes);
  const opts: EngineOptions = {
    store,
    agent,
    codec: testCodec(),
    volumes,
    clock: systemClock,
    containerPrefix: 'ployz-',
    machineId: 'm1',
    processNonce: 'p1',
    drainMs: 0,
    newDeployId: () => newDeployId(),
    newInstanceId,
  };
  engine = new DeployEngine(opts);
});

async function deploySource(version: string) {
  const m = testCodec().manifestOf(parseManifest(manifestText('shop', version), { format: 'toml' }));
  const r = await engine.apply(m, { actor: 't' });
  expect(r.status?.state).toBe('committed');
  return r.status?.deploy_id ?? '';
}

const commitsOf = (ns: string): DeployCommit[] => store.commits.filter((c) => c.namespace === ns);

describe('branch through the engine', () => {
  it('clones before the candidates start, records lineage in the commit, and leaves the source alone', async () => {
    await deploySource('v1');
    const v2 = await deploySource('v2');
    const events: DeployEvent[] = [];
    volumes.calls.length = 0;
    const r = await engine.branch(
      { source: 'shop', destination: 'pr', volumes: {}, hostSuffix: 'pr-7', override: null },
      { actor: 't' },
      (e) => events.push(e),
    );
    expect(r.status?.state).toBe('committed');
    const source = volumes.vol('shop', { volume: 'data', slot: null });
    const snapshotAtV2 = source.snapshots.find((s) => s.label === v2);
    // (The stop-first of a single volume finds no writer in the new namespace.)
    expect(volumes.calls.filter((c) => !c.startsWith('stop')).slice(0, 2)).toEqual([
      `clone pr/data ← ${snapshotAtV2?.id}`,
      'start pr/web',
    ]);
    // The branch's data is the source's at its last commit, plus what the branch wrote.
    expect(volumes.vol('pr', { volume: 'data', slot: null }).data).toEqual(['v1@shop', 'v2@shop', 'v2@pr']);
    expect(source.data).toEqual(['v1@shop', 'v2@shop']);
    const [commit] = commitsOf('pr');
    const sourceRevision = (await store.listReleases('shop'))[0]?.value.revision;
    expect(commit?.services[0]?.source_revision).toBe(sourceRevision);
    expect(commit?.lineage).toMatchObject({
      kind: 'branch',
      from_namespace: 'shop',
      from_deploy: v2,
      host_suffix: 'pr-7',
      services: [{ service: 'web', from_revision: sourceRevision, from_deploy: v2, overridden: false }],
      volumes: [{ volume: 'data', slot: null, data: 'clone', snapshot: { id: snapshotAtV2?.id, label: v2 } }],
    });
    // Its own hostname, its own volume record with the snapshot of its commit.
    const revision = await store.getRevision('pr', 'web', commit?.services[0]?.revision ?? '');
    expect(revision?.spec.routes).toEqual([
      { kind: 'http', hostnames: ['pr-7.shop.example.com'], path: '/', port: 'http' },
    ]);
    const record = (await volumes.getRecord('pr', 'data'))?.value;
    expect(record?.snapshots.map((s) => s.deploy_id)).toEqual([r.status?.deploy_id]);
    const plan = events.find((e) => e.type === 'plan');
    expect(plan?.type === 'plan' && plan.plan.volumes.map((v) => [v.volume, v.action])).toEqual([
      ['data', 'clone'],
    ]);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'volume', action: 'cloned', volume: 'data' }),
    );

    // A second branch into the same name is refused: it exists now.
    const again = await engine
      .branch(
        { source: 'shop', destination: 'pr', volumes: {}, hostSuffix: null, override: null },
        { actor: 't' },
      )
      .catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'BRANCH_DESTINATION_EXISTS' });
  });

  it('discards the clone when the branch fails before its commit, so the same branch can be made again', async () => {
    await deploySource('v1');
    agent.notReady.add('v1');
    const failed = await engine
      .branch(
        { source: 'shop', destination: 'pr', volumes: {}, hostSuffix: null, override: null },
        { actor: 't' },
      )
      .catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'DEPLOY_READINESS_FAILED' });
    expect(volumes.vols.has('pr/data')).toBe(false);
    expect(volumes.calls).toContain('discard pr/data');
    expect(commitsOf('pr')).toEqual([]);
    agent.notReady.clear();
    const r = await engine.branch(
      { source: 'shop', destination: 'pr', volumes: {}, hostSuffix: null, override: null },
      { actor: 't' },
    );
    expect(r.status?.state).toBe('committed');
  });

  it('an empty volume is not cloned', async () => {
    await deploySource('v1');
    await engine.branch(
      { source: 'shop', destination: 'pr', volumes: { data: 'empty' }, hostSuffix: null, override: null },
      { actor: 't' },
    );
    expect(volumes.calls.some((c) => c.startsWith('clone'))).toBe(false);
    expect(volumes.vol('pr', { volume: 'data', slot: null }).data).toEqual(['v1@pr']);
    expect(commitsOf('pr')[0]?.lineage?.volumes).toEqual([
      { volume: 'data', slot: null, data: 'empty', snapshot: null, previous: null },
    ]);
  });
});

describe('promote through the engine', () => {
  async function branchThenChange() {
    const v1 = await deploySource('v1');
    await engine.branch(
      { source: 'shop', destination: 'pr', volumes: {}, hostSuffix: 'pr-7', override: null },
      { actor: 't' },
    );
    // The branch gets a new version (its own deploy; lineage stays with its first commit).
    const m = testCodec().manifestOf(parseManifest(manifestText('pr', 'v9'), { format: 'toml' }));
    const routed = {
      ...m,
      services: m.services.map((s) => ({ ...s, source: { ...s.source, routes: [] } })),
    };
    expect((await engine.apply(routed, { actor: 't' })).status?.state).toBe('committed');
    return v1;
  }

  it("deploys the branch's revision into the source with the source's hostname; the data stays the source's", async () => {
    await branchThenChange();
    const r = await engine.promote({ branch: 'pr', source: 'shop', withData: false }, { actor: 't' });
    expect(r.status?.state).toBe('committed');
    const commit = commitsOf('shop').at(-1);
    const branchRevision = (await store.listReleases('pr'))[0]?.value.revision;
    expect(commit?.lineage).toMatchObject({
      kind: 'promote',
      from_namespace: 'pr',
      services: [{ service: 'web', from_revision: branchRevision, overridden: false }],
      volumes: [{ volume: 'data', data: 'kept' }],
    });
    expect(commit?.services[0]?.source_revision).toBe(branchRevision);
    const revision = await store.getRevision('shop', 'web', commit?.services[0]?.revision ?? '');
    expect(revision?.spec.env.VERSION).toBeDefined();
    expect(revision?.spec.routes).toEqual([
      { kind: 'http', hostnames: ['shop.example.com'], path: '/', port: 'http' },
    ]);
    expect(volumes.vol('shop', { volume: 'data', slot: null }).data).toEqual(['v1@shop', 'v9@shop']);
    const refused = await engine
      .promote({ branch: 'shop', source: 'pr', withData: false }, { actor: 't' })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'PROMOTE_NOT_A_BRANCH' });
  });

  it("with data: snapshots the source's data first, replaces it with the branch's, and a rollback restores it", async () => {
    await branchThenChange();
    const before =
      (await store.listStatuses('shop'))
        .map((s) => s.value.deploy_id)
        .sort()
        .at(-1) ?? '';
    volumes.calls.length = 0;
    const r = await engine.promote({ branch: 'pr', source: 'shop', withData: true }, { actor: 't' });
    expect(r.status?.state).toBe('committed');
    const deployId = r.status?.deploy_id;
    expect(volumes.calls.slice(0, 6)).toEqual([
      'stop shop/data',
      `snapshot shop/data ${deployId}-pre`,
      `snapshot pr/data ${deployId}-promote`,
      expect.stringMatching(/^replace shop\/data ← snap-/),
      'stop shop/data', // stop-first of the single volume: its writers are stopped already
      'start shop/web',
    ]);
    expect(volumes.vol('shop', { volume: 'data', slot: null }).data).toEqual([
      'v1@shop',
      'v1@pr',
      'v9@pr',
      'v9@shop',
    ]);
    const lineage = commitsOf('shop').at(-1)?.lineage;
    expect(lineage?.volumes[0]).toMatchObject({
      data: 'replaced',
      snapshot: { label: `${deployId}-promote`, volume: 'data' },
      previous: { label: `${deployId}-pre` },
    });
    // The data it replaced is kept and listed with the promote's deploy.
    const record = (await volumes.getRecord('shop', 'data'))?.value;
    expect(record?.snapshots.filter((s) => s.deploy_id === deployId).map((s) => s.id)).toEqual([
      lineage?.volumes[0]?.previous?.id,
      expect.any(String),
    ]);
    const back = await engine.rollback(before, 't');
    expect(back.status?.state).toBe('committed');
    expect(volumes.vol('shop', { volume: 'data', slot: null }).data).toEqual(['v1@shop', 'v1@shop']);
  });
});

describe('namespace rm through the engine', () => {
  it('keeps the volumes by default and says how to delete them', async () => {
    await deploySource('v1');
    const events: DeployEvent[] = [];
    const r = await engine.removeNamespace('shop', { actor: 't', preview: false }, (e) => events.push(e));
    expect(r.status?.state).toBe('committed');
    expect(r.plan.volumes).toEqual([
      expect.objectContaining({
        volume: 'data',
        action: 'keep',
        detail: expect.stringContaining('--delete-volumes'),
      }),
    ]);
    expect(volumes.calls.filter((c) => c.startsWith('retire'))).toEqual([]);
    expect(volumes.vol('shop', { volume: 'data', slot: null }).data).toEqual(['v1@shop']);
    expect(await volumes.getRecord('shop', 'data')).not.toBeNull();
  });

  it('--delete-volumes: previews the volume and its final snapshot, retires it only after the commit', async () => {
    await deploySource('v1');
    const preview = await engine.removeNamespace('shop', { actor: 't', preview: true, deleteVolumes: true });
    expect(preview.plan.volumes).toEqual([
      expect.objectContaining({
        volume: 'data',
        action: 'delete',
        detail: expect.stringContaining('final snapshot <deploy>-final'),
      }),
    ]);
    expect(volumes.calls.filter((c) => c.startsWith('retire'))).toEqual([]);
    const before = commitsOf('shop').length;
    const seen: number[] = [];
    volumes.onRetire = () => seen.push(commitsOf('shop').length);
    const events: DeployEvent[] = [];
    const r = await engine.removeNamespace('shop', { actor: 't', preview: false, deleteVolumes: true }, (e) =>
      events.push(e),
    );
    const id = r.status?.deploy_id ?? '';
    expect(r.status?.state).toBe('committed');
    // The removal's commit was written before the retire began.
    expect(seen).toEqual([before + 1]);
    expect(volumes.calls.filter((c) => c.startsWith('retire'))).toEqual([`retire shop/data ${id}-final`]);
    expect(volumes.retired.get('shop/data')).toEqual({ label: `${id}-final`, data: ['v1@shop'] });
    expect(volumes.vols.has('shop/data')).toBe(false);
    expect(await volumes.getRecord('shop', 'data')).toBeNull();
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'volume',
        action: 'retired',
        detail: expect.stringContaining(`${id}-final`),
      }),
    );
  });

  it('--delete-volumes: a failed delete keeps the volume and its record, the removal stays committed, a retry deletes it', async () => {
    await deploySource('v1');
    volumes.onRetire = () => {
      throw new PloyzError('STORAGE_FAILED', 'disk on fire');
    };
    const events: DeployEvent[] = [];
    const r = await engine.removeNamespace('shop', { actor: 't', preview: false, deleteVolumes: true }, (e) =>
      events.push(e),
    );
    expect(r.status?.state).toBe('committed');
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'warning',
        message: expect.stringMatching(/not deleted and is kept.*again to retry/),
      }),
    );
    expect(volumes.vol('shop', { volume: 'data', slot: null }).data).toEqual(['v1@shop']);
    expect(await volumes.getRecord('shop', 'data')).not.toBeNull();
    volumes.onRetire = () => {};
    const retry = await engine.removeNamespace('shop', { actor: 't', preview: false, deleteVolumes: true });
    expect(retry.status?.state).toBe('committed');
    expect(await volumes.getRecord('shop', 'data')).toBeNull();
    expect(volumes.retired.get('shop/data')?.data).toEqual(['v1@shop']);
  });
});
