/**
 * The orchestrator's sequencing on the in-memory store and a scripted agent (the fakes beside
 * the real store/Docker tests in store-port.test.ts, docker-agent.test.ts and e2e/).
 */
import { fixtures } from '@ployz/testkit';
import { type DeployStatusRecord, PloyzError } from '@ployz/types';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryDeployStore } from '../../../test/fakes/memory-store.ts';
import { machine, service, testCodec } from '../../../test/fakes/sample-records.ts';
import type { EngineOptions } from '../context.ts';
import { DeployEngine, newDeployId, newInstanceId } from '../engine.ts';
import type { DeployEvent } from '../model/events.ts';
import type { DeployManifest, DeployService } from '../model/spec.ts';
import type { MachineAgent, StartRequest, Versioned } from '../ports.ts';
import { systemClock } from '../ports.ts';
import { deployLeaseKey, heldByEarlierSelf, leaseOwner, parseLeaseOwner } from './lease.ts';

class ScriptedAgent implements MachineAgent {
  started: StartRequest[] = [];
  stopped: string[] = [];
  running = new Set<string>();
  notReady = new Set<string>(); // images that never become ready
  failStop = false;
  /** Machines that answer nothing (the probe and every command to them time out). */
  silent = new Set<string>();
  /** Runs while a candidate waits for readiness (another writer acting meanwhile). */
  duringReady: (() => void) | null = null;
  async capacity(machine: string) {
    if (this.silent.has(machine)) throw new PloyzError('RPC_TIMEOUT', `machine ${machine} did not answer`);
    return { cpus: 2, memory_free_mb: 4096, disk_free_mb: 1000 };
  }
  async start(req: StartRequest) {
    this.started.push(req);
    this.running.add(req.instance);
    return { container_id: `c-${req.instance}`, ip: '10.210.0.9', name: `ployz-${req.instance}` };
  }
  async waitReady(_m: string, inst: { container_id: string }, _r: unknown, _s: AbortSignal) {
    this.duringReady?.();
    const req = this.started.find((s) => `c-${s.instance}` === inst.container_id);
    if (req && this.notReady.has(req.service.image)) {
      throw new PloyzError('DEPLOY_READINESS_FAILED', `${req.service.name} never became ready`);
    }
  }
  async stop(req: { instance: string; machine: string }) {
    if (this.failStop) throw new Error('docker went away');
    if (this.silent.has(req.machine))
      throw new PloyzError('RPC_TIMEOUT', `machine ${req.machine} did not answer`);
    this.stopped.push(req.instance);
    this.running.delete(req.instance);
  }
}

let store: MemoryDeployStore;
let agent: ScriptedAgent;
let opts: EngineOptions;
let engine: DeployEngine;

function manifest(services: DeployService[], phases: DeployManifest['phases'] = []): DeployManifest {
  return {
    namespace: 'shop',
    services,
    volumes: [],
    phases,
    manifest_hash: `h-${services.map((s) => s.image).join(',')}`,
  };
}

async function run(m: DeployManifest) {
  const events: DeployEvent[] = [];
  const result = await engine.apply(m, { actor: 'test' }, (e) => events.push(e));
  return { result, events };
}

beforeEach(() => {
  store = new MemoryDeployStore(systemClock);
  store.machines.set('m1', machine('m1'));
  agent = new ScriptedAgent();
  opts = {
    store,
    agent,
    codec: testCodec(),
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

describe('apply', () => {
  it('runs the nine steps in order and commits a create', async () => {
    const { result, events } = await run(manifest([service('web')]));
    expect(result.status?.state).toBe('committed');
    const started = events
      .filter((e) => e.type === 'step' && e.state === 'started')
      .map((e) => (e.type === 'step' ? e.step : 0));
    expect(started).toEqual([1, 2, 3, 4, 5, 7, 8, 9]);
    expect(events.some((e) => e.type === 'step' && e.step === 6 && e.state === 'skipped')).toBe(true);
    expect(store.commits).toHaveLength(1);
    expect(store.commits[0]).toMatchObject({
      kind: 'final',
      namespace: 'shop',
      services: [{ service: 'web' }],
    });
    const release = [...store.releases.values()][0];
    expect(release?.slots[0]?.instance).toBe(agent.started[0]?.instance);
    expect([...store.phases.values()].map((p) => [p.state, p.commit_id])).toEqual([
      ['committed', store.commits[0]?.id],
    ]);
    expect(store.events.map((e) => e.type)).toEqual([
      'revision_stored',
      'instance_upserted',
      'release_committed',
    ]);
    expect(store.leases.size).toBe(0);
  });

  it('redeploying the same manifest is a no-op: no writes, no containers', async () => {
    await run(manifest([service('web')]));
    const before = {
      commits: store.commits.length,
      statuses: store.statuses.size,
      started: agent.started.length,
    };
    const { result } = await run(manifest([service('web')]));
    expect(result.noop).toBe(true);
    expect(result.plan.changed).toBe(false);
    expect({
      commits: store.commits.length,
      statuses: store.statuses.size,
      started: agent.started.length,
    }).toEqual(before);
    expect(agent.stopped).toEqual([]);
  });

  it('an image change starts the new revision first, commits, routes, then removes the old one', async () => {
    await run(manifest([service('web')]));
    const old = agent.started[0]?.instance;
    const { result } = await run(manifest([service('web', { image: 'ployz/hello:2' })]));
    expect(result.status?.state).toBe('committed');
    expect(result.plan.services[0]?.action).toBe('replace');
    const fresh = agent.started[1]?.instance;
    expect(agent.stopped).toEqual([old]);
    expect([...store.instances.keys()]).toEqual([fresh]);
    const types = store.events.map((e) => e.type);
    const committedAt = types.lastIndexOf('release_committed');
    expect(types.indexOf('instance_removed')).toBeGreaterThan(committedAt);
    const drained = store.events
      .filter((e) => e.type === 'instance_upserted' && e.instance.id === old)
      .at(-1);
    expect(drained?.type === 'instance_upserted' && drained.instance.draining).toBe(true);
  });

  it('failing readiness → failed, candidates discarded, the old release untouched', async () => {
    await run(manifest([service('web')]));
    const release = structuredClone([...store.releases.values()]);
    const commits = store.commits.length;
    agent.notReady.add('ployz/bad:1');
    const events: DeployEvent[] = [];
    await expect(
      engine.apply(manifest([service('web', { image: 'ployz/bad:1' })]), { actor: 't' }, (e) =>
        events.push(e),
      ),
    ).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      details: { state: 'failed' },
    });
    expect([...store.releases.values()]).toEqual(release);
    expect(store.commits).toHaveLength(commits);
    const failed = [...store.statuses.values()].find((s) => s.state === 'failed');
    expect(failed?.error?.code).toBe('DEPLOY_READINESS_FAILED');
    expect(agent.running.size).toBe(1); // only the old one
    expect([...store.instances.values()].map((i) => i.revision)).toEqual(release.map((r) => r.revision));
    expect(events.some((e) => e.type === 'instance' && e.action === 'discarded')).toBe(true);
    expect(store.leases.size).toBe(0);
  });

  it('a status record written behind the apply is a STORE_CONFLICT, never overwritten', async () => {
    agent.duringReady = () => {
      const [status] = [...store.statuses.values()];
      if (status) store.statuses.set(status.deploy_id, { ...status, actor: 'someone-else' });
    };
    await expect(run(manifest([service('web')]))).rejects.toMatchObject({
      code: 'STORE_CONFLICT',
      details: { state: 'failed' },
    });
    const [status] = [...store.statuses.values()];
    expect(status).toMatchObject({ actor: 'someone-else', state: 'applying', step: 5 });
    expect(store.commits).toHaveLength(0);
    expect(store.releases.size).toBe(0);
    expect(agent.running.size).toBe(0); // the candidate was discarded
    expect(store.leases.size).toBe(0);
  });

  it('an old instance the facts loop updates while it is marked draining is marked on top of that', async () => {
    await run(manifest([service('web')]));
    const old = agent.started[0]?.instance as string;
    const put = store.putInstance.bind(store);
    store.putInstance = async (record, expected) => {
      const cur = store.instances.get(record.id);
      if (record.draining && cur !== undefined && cur.error === null) {
        store.instances.set(record.id, { ...cur, error: 'unverified: the container is gone' });
      }
      return put(record, expected);
    };
    const { result } = await run(manifest([service('web', { image: 'ployz/hello:2' })]));
    expect(result.status?.state).toBe('committed');
    const drained = store.events.find(
      (e) => e.type === 'instance_upserted' && e.instance.id === old && e.instance.draining,
    );
    expect(drained?.type === 'instance_upserted' && drained.instance.error).toBe(
      'unverified: the container is gone',
    );
    expect(agent.stopped).toEqual([old]);
  });

  it('a held lease fails at once with the holder and expiry, before any durable write', async () => {
    await store.acquireLease(deployLeaseKey('shop'), 'ployzd:m2:x', 60_000, 'deploy dep-other');
    await expect(run(manifest([service('web')]))).rejects.toMatchObject({
      code: 'DEPLOY_LOCK_HELD',
      details: { holder: 'ployzd:m2:x', expires_at: expect.any(String) },
    });
    expect(store.statuses.size).toBe(0);
    expect(agent.started).toHaveLength(0);
  });

  it('failure after a checkpoint → FailedAfterCheckpoint, checkpointed facts live', async () => {
    agent.notReady.add('ployz/bad:1');
    const m = manifest(
      [service('db'), service('web', { image: 'ployz/bad:1' })],
      [{ id: 'data', services: ['db'], after: [], commit: 'checkpoint' }],
    );
    await expect(run(m)).rejects.toMatchObject({ details: { state: 'FailedAfterCheckpoint' } });
    const status = [...store.statuses.values()][0];
    expect(status?.state).toBe('FailedAfterCheckpoint');
    expect(status?.commits).toEqual([`${status?.deploy_id}-cp-data`]);
    expect([...store.releases.values()].map((r) => r.service)).toEqual(['db']);
    expect(store.events.filter((e) => e.type === 'release_committed')).toHaveLength(1);
    const phases = [...store.phases.values()].sort((a, b) => a.index - b.index);
    expect(phases.map((p) => [p.phase, p.state])).toEqual([
      ['data', 'committed'],
      ['default', 'failed'],
    ]);
    expect(agent.running.size).toBe(1);
  });

  it('a cleanup failure after the final commit → FailedAfterCheckpoint, new version live', async () => {
    await run(manifest([service('web')]));
    const first = new Set(store.statuses.keys());
    agent.failStop = true;
    await expect(run(manifest([service('web', { image: 'ployz/hello:2' })]))).rejects.toMatchObject({
      code: 'DEPLOY_FAILED_AFTER_CHECKPOINT',
    });
    // The second deploy's status (ids made in the same millisecond do not sort by time).
    const latest = [...store.statuses.entries()].find(([k]) => !first.has(k))?.[1];
    expect(latest?.state).toBe('FailedAfterCheckpoint');
    const release = [...store.releases.values()][0];
    expect(release?.deploy).toBe(latest?.deploy_id);
    // The next deploy cleans the leftover as an orphan.
    agent.failStop = false;
    const next = await engine.preview(manifest([service('web', { image: 'ployz/hello:2' })]));
    expect(next.services[0]?.stops.map((s) => s.reason)).toEqual(['orphan']);
  });

  it('an old instance on a machine that did not answer the probe is left draining, not waited for; the deploy commits', async () => {
    store.machines.set('m2', machine('m2'));
    await run(manifest([service('web', { placement: { mode: 'replicated', replicas: 2, regions: [] } })]));
    const onM2 = [...store.instances.values()].find((i) => i.machine === 'm2');
    expect(onM2).toBeDefined();
    agent.silent.add('m2');
    const { result, events } = await run(
      manifest([
        service('web', {
          image: 'ployz/hello:2',
          placement: { mode: 'replicated', replicas: 2, regions: [] },
        }),
      ]),
    );
    expect(result.status?.state).toBe('committed');
    expect(agent.stopped).not.toContain(onM2?.id);
    expect(events).toContainEqual({
      type: 'machine',
      machine: 'm2',
      available: false,
      detail: 'machine m2 did not answer',
    });
    const warning = events.find((e) => e.type === 'warning');
    expect(warning).toMatchObject({ message: expect.stringContaining(`${onM2?.id} on m2 left for later`) });
    // Not routed meanwhile: its record is draining. Once m2 answers, the next deploy removes it.
    expect([...store.instances.values()].find((i) => i.id === onM2?.id)?.draining).toBe(true);
    agent.silent.clear();
    await run(
      manifest([
        service('web', {
          image: 'ployz/hello:2',
          placement: { mode: 'replicated', replicas: 2, regions: [] },
        }),
      ]),
    );
    expect(agent.stopped).toContain(onM2?.id);
  });

  it('rollback restores the revisions of an earlier deploy as a new deploy with rollback_of', async () => {
    const first = await run(manifest([service('web')]));
    await run(manifest([service('web', { image: 'ployz/hello:2' })]));
    const firstId = first.result.status?.deploy_id as string;
    const rb = await engine.rollback(firstId, 'test');
    expect(rb.status).toMatchObject({ state: 'committed', rollback_of: firstId });
    const release = [...store.releases.values()][0];
    expect(release?.revision).toBe(first.result.plan.services[0]?.revision);
    expect(store.commits.at(-1)?.rollback_of).toBe(firstId);
    expect(await engine.list({ namespace: 'shop' })).toHaveLength(3);
    // Redeploying the old manifest now is clean: same result either way.
    expect((await engine.preview(manifest([service('web')]))).changed).toBe(false);
  });

  it('rolls back to, and away from, a FailedAfterCheckpoint deploy', async () => {
    const first = await run(manifest([service('web')]));
    agent.failStop = true;
    await expect(run(manifest([service('web', { image: 'ployz/hello:2' })]))).rejects.toMatchObject({
      code: 'DEPLOY_FAILED_AFTER_CHECKPOINT',
    });
    agent.failStop = false;
    // The one deploy that is not the first (two deploys in one fake-clock millisecond tie on time).
    const fac = (await engine.list({ namespace: 'shop' })).find(
      (d) => d.deploy_id !== first.result.status?.deploy_id,
    );
    expect(fac?.state).toBe('FailedAfterCheckpoint');
    // Away from it: back to the first deploy (the leftover old instance is cleaned as an orphan).
    const back = await engine.rollback(first.result.status?.deploy_id as string, 't');
    expect(back.status).toMatchObject({ state: 'committed' });
    expect([...store.releases.values()][0]?.revision).toBe(first.result.plan.services[0]?.revision);
    expect(agent.running.size).toBe(1);
    // To it: its final commit is valid, so its revision comes back.
    const to = await engine.rollback(fac?.deploy_id as string, 't');
    expect(to.status).toMatchObject({ state: 'committed', rollback_of: fac?.deploy_id });
    expect([...store.releases.values()][0]?.revision).not.toBe(first.result.plan.services[0]?.revision);
  });

  it('a rollback to a deploy before a volume move is ROLLBACK_PAST_MOVE naming the move; nothing is written', async () => {
    const first = await run(manifest([service('web')]));
    const second = await run(manifest([service('web', { image: 'ployz/hello:2' })]));
    const firstId = first.result.status?.deploy_id as string;
    const moveId = second.result.status?.deploy_id as string;
    // The second deploy's commit moved a volume (as a volume move's final commit records it).
    const moved = store.commits.find((c) => c.deploy_id === moveId && c.kind === 'final');
    if (moved === undefined) throw new Error('no final commit of the second deploy');
    moved.volume_movements = [
      {
        volume: 'data',
        slot: null,
        from_machine: 'm1',
        to_machine: 'm2',
        driver: 'zfs',
        snapshot: `${moveId}-cutover`,
        guid: '42',
        bytes: 1024,
        verified: true,
      },
    ];
    const commits = store.commits.length;
    const statuses = store.statuses.size;
    await expect(engine.rollback(firstId, 'test')).rejects.toMatchObject({
      code: 'ROLLBACK_PAST_MOVE',
      details: { move_deploy: moveId, rollback_of: firstId },
    });
    expect(store.commits).toHaveLength(commits);
    expect(store.statuses.size).toBe(statuses);
    // To the move itself is allowed.
    const to = await engine.rollback(moveId, 'test');
    expect(to.status).toMatchObject({ state: 'committed', rollback_of: moveId });
  });

  it('rollback to a deploy that committed nothing is refused', async () => {
    agent.notReady.add('ployz/bad:1');
    await expect(run(manifest([service('web', { image: 'ployz/bad:1' })]))).rejects.toThrow();
    const failed = [...store.statuses.values()][0];
    await expect(engine.rollback(failed?.deploy_id as string, 't')).rejects.toMatchObject({
      code: 'ROLLBACK_INVALID',
    });
  });
});

describe('the deploy lease', () => {
  it("is keyed by the store's scheme and owned by `ployzd:<machine>:<nonce>`, parsed back the same way", () => {
    expect(deployLeaseKey('shop')).toBe('cp.lock.deploy.shop');
    expect(deployLeaseKey('a.b')).not.toBe('cp.lock.deploy.a.b'); // tokens escaped, one level
    const owner = leaseOwner({ machineId: 'm1', processNonce: '42-beef' });
    expect(owner).toBe('ployzd:m1:42-beef');
    expect(parseLeaseOwner(owner)).toEqual({ machineId: 'm1', processNonce: '42-beef' });
    expect(parseLeaseOwner('someone-else')).toBeNull();
    expect(heldByEarlierSelf({ machineId: 'm1', processNonce: 'new' }, owner)).toBe(true);
    expect(heldByEarlierSelf({ machineId: 'm1', processNonce: '42-beef' }, owner)).toBe(false);
    expect(heldByEarlierSelf({ machineId: 'm10', processNonce: 'new' }, owner)).toBe(false);
  });
});

describe('deploy history pages', () => {
  async function seed(n: number, namespace = 'shop') {
    const base = Date.parse('2026-01-01T00:00:00.000Z');
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const at = new Date(base + i * 1000);
      const id = newDeployId(at);
      ids.push(id);
      await store.putStatus(
        fixtures.deployStatus(id, {
          namespace,
          state: 'committed',
          manifest_hash: `h${i}`,
          phases: [],
          step: 9,
          started_at: at.toISOString(),
          updated_at: at.toISOString(),
        }),
        null,
      );
    }
    return ids;
  }

  it('lists newest first, 20 by default, and `before` continues with the next older page', async () => {
    const ids = await seed(45);
    const newest = [...ids].reverse();
    const first = await engine.list({ namespace: 'shop' });
    expect(first.map((s) => s.deploy_id)).toEqual(newest.slice(0, 20));
    const second = await engine.list({ namespace: 'shop', limit: 20, before: first.at(-1)?.deploy_id });
    expect(second.map((s) => s.deploy_id)).toEqual(newest.slice(20, 40));
    const third = await engine.list({ namespace: 'shop', limit: 20, before: second.at(-1)?.deploy_id });
    expect(third.map((s) => s.deploy_id)).toEqual(newest.slice(40));
    expect(await engine.list({ limit: 3 })).toHaveLength(3);
    await expect(engine.list({ before: 'd-nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it("show reads a settled deploy's commits by the ids its status lists, not the namespace", async () => {
    const first = await run(manifest([service('web')]));
    await run(manifest([service('web', { image: 'ployz/hello:2' })]));
    const id = first.result.status?.deploy_id as string;
    store.failNext.set('listCommits', new Error('listed every commit of the namespace'));
    const shown = await engine.show(id);
    expect(shown.commits.map((c) => [c.deploy_id, c.kind])).toEqual([[id, 'final']]);
    expect(shown.commits.map((c) => c.id)).toEqual(shown.status.commits);
    expect(store.failNext.has('listCommits')).toBe(true);
    store.failNext.clear();
    // An unsettled status may trail its last append: that one is found by scanning.
    const status = (await store.getStatus(id)) as Versioned<DeployStatusRecord>;
    await store.putStatus({ ...status.value, state: 'applying', commits: [] }, status.revision);
    expect((await engine.show(id)).commits.map((c) => c.deploy_id)).toEqual([id]);
  });

  it('a page reads the ids and only the records it shows, never every status', async () => {
    await seed(45);
    store.failNext.set('listStatuses', new Error('read every status'));
    const get = store.getStatus.bind(store);
    let reads = 0;
    store.getStatus = (id) => {
      reads += 1;
      return get(id);
    };
    expect(await engine.list({ limit: 5 })).toHaveLength(5);
    expect(reads).toBe(5);
    expect(store.failNext.has('listStatuses')).toBe(true);
    store.failNext.clear();
  });

  it('pages stay within the namespace', async () => {
    await seed(3, 'shop');
    const other = await seed(2, 'blog');
    expect((await engine.list({ namespace: 'blog' })).map((s) => s.deploy_id)).toEqual([...other].reverse());
  });
});

describe('recover', () => {
  it('an applying deploy without commits whose holder died → failed, candidates gone, lease broken', async () => {
    const crashed = new DeployEngine({ ...opts, processNonce: 'old', pauseAtStep: 7 });
    void crashed.apply(manifest([service('web')]), { actor: 't' });
    await waitFor(() => [...store.statuses.values()][0]?.step === 7);
    expect(store.leases.size).toBe(1);
    const reports = await engine.recover();
    expect(reports).toMatchObject([{ from: 'applying', to: 'failed', step: 7, discarded: 1 }]);
    expect([...store.statuses.values()][0]?.error?.message).toContain('step 7');
    expect(store.instances.size).toBe(0);
    expect(agent.running.size).toBe(0);
    expect(store.leases.size).toBe(0);
    expect((await run(manifest([service('web')]))).result.status?.state).toBe('committed');
  });

  it('a deploy killed after its final commit → routing re-derived, old removed, committed', async () => {
    await run(manifest([service('web')]));
    store.events.length = 0;
    const crashed = new DeployEngine({ ...opts, processNonce: 'old', pauseAtStep: 8 });
    void crashed.apply(manifest([service('web', { image: 'ployz/hello:2' })]), { actor: 't' });
    await waitFor(() => [...store.statuses.values()].some((s) => s.step === 8));
    expect(store.events).toHaveLength(0); // routing not yet published
    const reports = await engine.recover();
    expect(reports).toMatchObject([{ to: 'committed', removed: 1 }]);
    expect(store.events.map((e) => e.type)).toContain('release_committed');
    expect(agent.running.size).toBe(1);
    expect(store.leases.size).toBe(0);
  });

  it('a deploy killed after a checkpoint commit → FailedAfterCheckpoint, checkpointed facts live', async () => {
    await run(manifest([service('db'), service('web')]));
    store.events.length = 0;
    const m = manifest(
      [service('db', { image: 'ployz/db:2' }), service('web', { image: 'ployz/hello:2' })],
      [{ id: 'data', services: ['db'], after: [], commit: 'checkpoint' }],
    );
    const crashed = new DeployEngine({ ...opts, processNonce: 'old', pauseAtStep: 7 });
    void crashed.apply(m, { actor: 't' });
    await waitFor(() => [...store.statuses.values()].some((s) => s.step === 7));
    const reports = await engine.recover();
    expect(reports).toMatchObject([
      { from: 'checkpoint_committed', to: 'FailedAfterCheckpoint', discarded: 1 },
    ]);
    const releases = new Map([...store.releases.values()].map((r) => [r.service, r]));
    expect(releases.get('db')?.deploy).toBe(reports[0]?.deploy_id);
    expect(releases.get('web')?.deploy).not.toBe(reports[0]?.deploy_id);
    expect(
      store.events
        .filter((e) => e.type === 'release_committed')
        .map((e) => e.type === 'release_committed' && e.release.service),
    ).toEqual(['db', 'db']);
    expect(store.leases.size).toBe(0);
    // The old db instance is left (not routed) and the next deploy removes it.
    const next = await engine.preview(m);
    expect(next.services.find((s) => s.service === 'db')?.stops.map((x) => x.reason)).toEqual(['orphan']);
  });

  it('leaves a deploy alone while its holder is alive', async () => {
    const other = new DeployEngine({ ...opts, machineId: 'm2', processNonce: 'live', pauseAtStep: 5 });
    void other.apply(manifest([service('web')]), { actor: 't' });
    await waitFor(() => [...store.statuses.values()][0]?.step === 5);
    expect(await engine.recover()).toEqual([]);
    expect([...store.statuses.values()][0]?.state).toBe('applying');
  });
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 5));
  }
}
