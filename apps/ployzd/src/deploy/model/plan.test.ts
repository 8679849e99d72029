import { type InstanceRecord, parseManifest, type ReleaseRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { capacityOf, machine, service } from '../../../test/fakes/sample-records.ts';
import { phasesOf } from './phases.ts';
import { planDeploy } from './plan.ts';
import type { DeployManifest, DeployService } from './spec.ts';

const machines = [machine('m1'), machine('m2')];
let seq = 0;
const newId = (_s: string, slot: number) => `${slot}-new${++seq}`;

function manifest(services: DeployService[], phases: DeployManifest['phases'] = []): DeployManifest {
  return { namespace: 'shop', services, phases, volumes: [], manifest_hash: 'h1' };
}

function release(svc: string, revision: string, slots: Array<[number, string, string]>): ReleaseRecord {
  return {
    namespace: 'shop',
    service: svc,
    revision,
    deploy: 'dep-1',
    slots: slots.map(([slot, machine, instance]) => ({ slot, machine, instance })),
    updated_at: '2026-01-01T00:00:00.000Z',
  };
}

function instance(
  id: string,
  svc: string,
  slot: number,
  m: string,
  revision: string,
  over: Partial<InstanceRecord> = {},
): InstanceRecord {
  return {
    id,
    namespace: 'shop',
    service: svc,
    slot,
    machine: m,
    revision,
    deploy: 'dep-1',
    container_id: 'c',
    ip: '10.0.0.3',
    ip6: null,
    ports: { http: 8080 },
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

function plan(
  m: DeployManifest,
  revs: Record<string, string>,
  releases: ReleaseRecord[] = [],
  instances: InstanceRecord[] = [],
) {
  return planDeploy({
    manifest: m,
    revisions: new Map(Object.entries(revs)),
    releases,
    instances,
    machines,
    capacity: capacityOf(machines),
    newInstanceId: newId,
  });
}

describe('planDeploy', () => {
  it('creates every slot of a new service', () => {
    const p = plan(
      manifest([service('web', { placement: { mode: 'replicated', replicas: 2, regions: [] } })]),
      { web: 'rev-aaaaaaaaaaaaaaaa' },
    );
    expect(p.changed).toBe(true);
    expect(p.services[0]?.action).toBe('create');
    expect(p.services[0]?.slots.map((s) => s.action)).toEqual(['start', 'start']);
    expect(p.summary).toMatchObject({ create: 1, starts: 2, stops: 0 });
  });

  it('is clean when revision and slots match healthy instances', () => {
    const p = plan(
      manifest([service('web')]),
      { web: 'rev-a' },
      [release('web', 'rev-a', [[0, 'm1', 'i0']])],
      [instance('i0', 'web', 0, 'm1', 'rev-a')],
    );
    expect(p.changed).toBe(false);
    expect(p.services[0]).toMatchObject({
      action: 'unchanged',
      slots: [{ action: 'keep', instance: 'i0' }],
      stops: [],
    });
    expect(p.summary.starts + p.summary.stops).toBe(0);
  });

  it('replaces every slot on a new revision, old ones stopped after', () => {
    const p = plan(
      manifest([service('web', { placement: { mode: 'replicated', replicas: 2, regions: [] } })]),
      { web: 'rev-b' },
      [
        release('web', 'rev-a', [
          [0, 'm1', 'i0'],
          [1, 'm2', 'i1'],
        ]),
      ],
      [instance('i0', 'web', 0, 'm1', 'rev-a'), instance('i1', 'web', 1, 'm2', 'rev-a')],
    );
    const web = p.services[0];
    expect(web?.action).toBe('replace');
    expect(web?.slots.map((s) => [s.slot, s.machine, s.action])).toEqual([
      [0, 'm1', 'start'],
      [1, 'm2', 'start'],
    ]);
    expect(web?.stops.map((s) => [s.instance, s.reason])).toEqual([
      ['i0', 'replaced'],
      ['i1', 'replaced'],
    ]);
  });

  it('scales down and up without touching kept slots', () => {
    const down = plan(
      manifest([service('web', { placement: { mode: 'replicated', replicas: 1, regions: [] } })]),
      { web: 'rev-a' },
      [
        release('web', 'rev-a', [
          [0, 'm1', 'i0'],
          [1, 'm2', 'i1'],
        ]),
      ],
      [instance('i0', 'web', 0, 'm1', 'rev-a'), instance('i1', 'web', 1, 'm2', 'rev-a')],
    );
    expect(down.services[0]).toMatchObject({
      action: 'update',
      slots: [{ action: 'keep', instance: 'i0' }],
      stops: [{ instance: 'i1', reason: 'scaled_down' }],
    });
    const up = plan(
      manifest([service('web', { placement: { mode: 'replicated', replicas: 2, regions: [] } })]),
      { web: 'rev-a' },
      [release('web', 'rev-a', [[0, 'm1', 'i0']])],
      [instance('i0', 'web', 0, 'm1', 'rev-a')],
    );
    expect(up.services[0]?.slots.map((s) => s.action)).toEqual(['keep', 'start']);
  });

  it('restarts a slot whose instance is gone or failed', () => {
    const p = plan(
      manifest([service('web')]),
      { web: 'rev-a' },
      [release('web', 'rev-a', [[0, 'm1', 'i0']])],
      [instance('i0', 'web', 0, 'm1', 'rev-a', { state: 'failed', error: 'exited 1' })],
    );
    expect(p.services[0]).toMatchObject({
      action: 'update',
      slots: [{ action: 'start' }],
      stops: [{ instance: 'i0', reason: 'lost' }],
    });
  });

  it('removes services that left the manifest and orphans no release points at', () => {
    const p = plan(
      manifest([service('web')]),
      { web: 'rev-a' },
      [release('web', 'rev-a', [[0, 'm1', 'i0']]), release('old', 'rev-o', [[0, 'm2', 'o0']])],
      [
        instance('i0', 'web', 0, 'm1', 'rev-a'),
        instance('o0', 'old', 0, 'm2', 'rev-o'),
        instance('stray', 'web', 0, 'm1', 'rev-z'),
      ],
    );
    expect(p.services.find((s) => s.service === 'old')).toMatchObject({
      action: 'remove',
      revision: null,
      stops: [{ instance: 'o0', reason: 'removed' }],
    });
    expect(p.services.find((s) => s.service === 'web')).toMatchObject({
      action: 'update',
      stops: [{ instance: 'stray', reason: 'orphan' }],
    });
    expect(p.changed).toBe(true);
  });

  it('ignores other namespaces', () => {
    const other = { ...release('web', 'rev-x', [[0, 'm1', 'z0']]), namespace: 'blog' };
    const p = plan(
      manifest([service('web')]),
      { web: 'rev-a' },
      [other],
      [{ ...instance('z0', 'web', 0, 'm1', 'rev-x'), namespace: 'blog' }],
    );
    expect(p.services).toHaveLength(1);
    expect(p.services[0]?.action).toBe('create');
  });

  it('assigns services to phases and describes each phase', () => {
    const p = plan(
      manifest(
        [service('db'), service('web'), service('worker')],
        [{ id: 'data', services: ['db'], after: [], commit: 'checkpoint' }],
      ),
      { db: 'rev-d', web: 'rev-w', worker: 'rev-k' },
    );
    expect(p.phases.map((x) => [x.id, x.commit_policy, x.services])).toEqual([
      ['data', 'checkpoint', ['db']],
      ['default', 'end_of_deploy', ['web', 'worker']],
    ]);
    expect(p.phases[0]?.does).toContain('checkpoint');
  });
});

describe('phasesOf', () => {
  it("keeps the manifest's (already validated) order; unnamed services in the default phase, last", () => {
    const phases = phasesOf(
      [
        { id: 'a', services: ['s1'], after: [], commit: 'checkpoint' },
        { id: 'b', services: ['s2'], after: ['a'], commit: 'checkpoint' },
        { id: 'c', services: ['s3'], after: [], commit: 'end_of_deploy' },
        { id: 'default', services: ['s5'], after: ['a', 'b', 'c'], commit: 'end_of_deploy' },
      ],
      ['s1', 's2', 's3', 's4', 's5'],
    );
    expect(phases.map((p) => [p.id, p.index, p.services])).toEqual([
      ['a', 0, ['s1']],
      ['b', 1, ['s2']],
      ['c', 2, ['s3']],
      ['default', 3, ['s5', 's4']],
    ]);
    expect(phasesOf([], ['x'])).toEqual([
      { id: 'default', index: 0, commit_policy: 'end_of_deploy', services: ['x'] },
    ]);
  });

  it('the order comes from the manifest parser: `after` first, then declaration', () => {
    const parsed = parseManifest(
      [
        'namespace = "shop"',
        '[[services]]',
        'name = "s1"',
        'image = "i"',
        '[[services]]',
        'name = "s2"',
        'image = "i"',
        '[[phases]]',
        'id = "b"',
        'services = ["s2"]',
        'after = ["a"]',
        '[[phases]]',
        'id = "a"',
        'services = ["s1"]',
      ].join('\n'),
      { format: 'toml' },
    );
    const phases = parsed.phases.map((p) => ({ ...p, commit: p.commit_policy }));
    expect(phasesOf(phases, ['s1', 's2']).map((p) => p.id)).toEqual(['a', 'b', 'default']);
  });
  it('a pinned service (a volume move) starts every slot on its machine; the old slots stop as moved', () => {
    const rev = 'rev-1';
    const pinned = { ...manifest([service('web')]), place_on: { web: 'm2' } };
    // web slot 0 runs on m1 at the revision the manifest renders.
    const onM1 = (m: Parameters<typeof planDeploy>[0]['manifest']) =>
      planDeploy({
        manifest: m,
        revisions: new Map([['web', rev]]),
        releases: [release('web', rev, [[0, 'm1', 'web-0-a']])],
        instances: [instance('web-0-a', 'web', 0, 'm1', rev)],
        machines,
        capacity: capacityOf(machines),
        newInstanceId: newId,
      });
    const plan = onM1(pinned);
    const web = plan.services.find((s) => s.service === 'web');
    expect(web?.action).toBe('update');
    expect(web?.slots).toMatchObject([{ slot: 0, machine: 'm2', action: 'start' }]);
    expect(web?.stops).toEqual([{ slot: 0, machine: 'm1', instance: 'web-0-a', reason: 'moved' }]);
    // The same manifest unpinned keeps the healthy slot where it runs.
    const kept = onM1(manifest([service('web')]));
    expect(kept.changed).toBe(false);
    // A pin to a machine that cannot take it is no capacity, never another machine.
    expect(() =>
      planDeploy({
        manifest: pinned,
        revisions: new Map([['web', rev]]),
        releases: [],
        instances: [],
        machines: [machine('m1')],
        capacity: capacityOf([machine('m1')]),
        newInstanceId: newId,
      }),
    ).toThrow(expect.objectContaining({ code: 'DEPLOY_NO_CAPACITY' }));
  });
});
