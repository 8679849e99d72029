import { LABELS } from '@ployz/identity';
import { describe, expect, it } from 'vitest';
import { COMPONENTS, type ContainerSpec, type DesiredComponent, PARENT_COMPONENT } from './component-spec.ts';
import { type ObservedContainer, planReconcile, repairDecision, stoppedTimes } from './plan.ts';

const INST = 'test-inst';

function desired(hashes: Partial<Record<string, string>> = {}): DesiredComponent[] {
  return COMPONENTS.map((component) => ({
    spec: { component, name: `p-${component}` } as ContainerSpec,
    configHash: hashes[component] ?? `hash-${component}`,
    parent: PARENT_COMPONENT[component],
  }));
}

function running(
  component: string,
  parentId?: string,
  extra: Partial<ObservedContainer> = {},
): ObservedContainer {
  return {
    id: `id-${component}`,
    name: `p-${component}`,
    labels: {
      [LABELS.managed]: 'true',
      [LABELS.kind]: 'system',
      [LABELS.installation]: INST,
      [LABELS.configHash]: `hash-${component}`,
      ...(parentId ? { [LABELS.parentContainerId]: parentId } : {}),
    },
    running: true,
    health: 'none',
    startedAt: '2026-01-01T00:00:00Z',
    ...extra,
  };
}

const allRunning = () => [
  running('networking'),
  running('nats', 'id-networking'),
  running('gateway', 'id-networking'),
  running('dns', 'id-networking'),
];

describe('planReconcile', () => {
  it('creates every component on an empty engine', () => {
    const plan = planReconcile({ installation: INST, desired: desired(), observed: [] });
    expect(plan.map((a) => [a.component, a.kind])).toEqual(COMPONENTS.map((c) => [c, 'create']));
  });

  it('adopts everything when hashes and parent ids match', () => {
    const plan = planReconcile({ installation: INST, desired: desired(), observed: allRunning() });
    expect(plan).toEqual(COMPONENTS.map((c) => ({ component: c, kind: 'adopt', containerId: `id-${c}` })));
  });

  it('recreates only the drifted leaf component', () => {
    const plan = planReconcile({
      installation: INST,
      desired: desired({ gateway: 'hash-new' }),
      observed: allRunning(),
    });
    expect(plan.map((a) => a.kind)).toEqual(['adopt', 'adopt', 'recreate', 'adopt']);
    const gw = plan[2];
    expect(gw?.kind === 'recreate' && gw.reason).toBe('config_drift');
  });

  it('recreates the children when the networking container drifts', () => {
    const plan = planReconcile({
      installation: INST,
      desired: desired({ networking: 'hash-new' }),
      observed: allRunning(),
    });
    expect(plan.map((a) => (a.kind === 'recreate' ? a.reason : a.kind))).toEqual([
      'config_drift',
      'parent_changed',
      'parent_changed',
      'parent_changed',
    ]);
  });

  it('recreates a child whose parent id label is stale', () => {
    const observed = allRunning();
    observed[1] = running('nats', 'id-old-networking');
    const plan = planReconcile({ installation: INST, desired: desired(), observed });
    expect(plan[1]).toMatchObject({ kind: 'recreate', reason: 'parent_changed', containerId: 'id-nats' });
    expect(plan.filter((a) => a.kind === 'adopt')).toHaveLength(3);
  });

  it('creates children when the parent is missing, even if they run', () => {
    const plan = planReconcile({ installation: INST, desired: desired(), observed: allRunning().slice(1) });
    expect(plan.map((a) => (a.kind === 'recreate' ? a.reason : a.kind))).toEqual([
      'create',
      'parent_changed',
      'parent_changed',
      'parent_changed',
    ]);
  });

  it('recreates a stopped container', () => {
    const observed = allRunning();
    observed[3] = running('dns', 'id-networking', { running: false });
    const plan = planReconcile({ installation: INST, desired: desired(), observed });
    expect(plan[3]).toMatchObject({ kind: 'recreate', reason: 'not_running' });
  });

  it('reports a container without Ployz labels as a collision and never plans to touch it', () => {
    const observed = allRunning();
    observed[2] = { ...running('gateway'), id: 'id-foreign', labels: { maintainer: 'someone' } };
    const plan = planReconcile({ installation: INST, desired: desired(), observed });
    expect(plan[2]).toMatchObject({ kind: 'collision', containerId: 'id-foreign', name: 'p-gateway' });
    expect(plan[2]?.kind === 'collision' && plan[2].detail).toContain('p-gateway');
    expect(plan.filter((a) => a.kind === 'adopt')).toHaveLength(3);
  });

  it('treats workloads and other installations holding the name as collisions', () => {
    const workload = running('nats', 'id-networking');
    workload.labels[LABELS.kind] = 'workload';
    const other = running('dns', 'id-networking');
    other.labels[LABELS.installation] = 'someone-else';
    const observed = [running('networking'), workload, running('gateway', 'id-networking'), other];
    const plan = planReconcile({ installation: INST, desired: desired(), observed });
    expect(plan.map((a) => a.kind)).toEqual(['adopt', 'collision', 'adopt', 'collision']);
  });

  it('blocks the children when the networking name collides', () => {
    const observed = [{ ...running('networking'), labels: {} }];
    const plan = planReconcile({ installation: INST, desired: desired(), observed });
    expect(plan.map((a) => a.kind)).toEqual(['collision', 'blocked', 'blocked', 'blocked']);
  });

  it('ignores containers whose names are not component names', () => {
    const stray = {
      ...running('web'),
      name: 'p-web',
      labels: { [LABELS.managed]: 'true', [LABELS.kind]: 'workload' },
    };
    const plan = planReconcile({
      installation: INST,
      desired: desired(),
      observed: [...allRunning(), stray],
    });
    expect(plan.every((a) => a.kind === 'adopt')).toBe(true);
    expect(plan.some((a) => 'containerId' in a && a.containerId === 'id-web')).toBe(false);
  });
});

describe('repairDecision (live repair between full passes)', () => {
  const plan = (observed: ObservedContainer[], hashes: Partial<Record<string, string>> = {}) =>
    planReconcile({ installation: INST, desired: desired(hashes), observed });

  it('does nothing while everything runs as planned', () => {
    expect(repairDecision(plan(allRunning()), new Set())).toEqual({ repair: false, stopped: new Set() });
  });

  it('repairs at once when a container is gone', () => {
    const observed = allRunning().filter((c) => c.name !== 'p-gateway');
    expect(repairDecision(plan(observed), new Set()).repair).toBe(true);
  });

  it('repairs a stopped component only on the second check that finds it stopped', () => {
    const observed = allRunning().map((c) => (c.name === 'p-dns' ? { ...c, running: false } : c));
    const first = repairDecision(plan(observed), new Set());
    expect(first).toEqual({ repair: false, stopped: new Set(['dns']) });
    const second = repairDecision(plan(observed), first.stopped);
    expect(second.repair).toBe(true);
    expect(second.stopped.size).toBe(0);
    // Restarted by Docker in between: the count starts over.
    expect(repairDecision(plan(allRunning()), first.stopped)).toEqual({ repair: false, stopped: new Set() });
  });

  it('repairs children whose networking container was replaced', () => {
    const observed = allRunning().map((c) => (c.name === 'p-networking' ? { ...c, id: 'id-new-net' } : c));
    expect(repairDecision(plan(observed), new Set()).repair).toBe(true);
  });

  it('leaves configuration drift and collisions alone', () => {
    expect(repairDecision(plan(allRunning(), { gateway: 'hash-changed' }), new Set()).repair).toBe(false);
    const observed = allRunning().map((c) => (c.name === 'p-dns' ? { ...c, labels: {} } : c));
    expect(repairDecision(plan(observed), new Set()).repair).toBe(false);
  });
});

describe('stoppedTimes (the stopped-component grace of the live repair)', () => {
  it('a component is due only after it has been seen stopped for the grace; running again forgets it', () => {
    const first = stoppedTimes(new Map(), new Set(['networking']), 1000, 3000);
    expect([...first.due]).toEqual([]);
    expect(first.since.get('networking')).toBe(1000);
    // Still stopped 0.5 s later (an engine shutting down): not yet.
    const soon = stoppedTimes(first.since, new Set(['networking']), 1500, 3000);
    expect([...soon.due]).toEqual([]);
    expect(soon.since.get('networking')).toBe(1000);
    // Still stopped after the grace: due.
    expect([...stoppedTimes(soon.since, new Set(['networking']), 4000, 3000).due]).toEqual(['networking']);
    // Seen running in between: the clock starts again.
    const back = stoppedTimes(soon.since, new Set(), 2000, 3000);
    expect(back.since.size).toBe(0);
    expect([...stoppedTimes(back.since, new Set(['networking']), 4500, 3000).due]).toEqual([]);
  });
});
