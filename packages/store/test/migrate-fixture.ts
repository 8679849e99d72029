/** A source store with history for the migration tests: ≥ 50 deploy commits' worth of records. */
import type { NatsConnection } from '@nats-io/transport-node';
import { Store } from '../src/index.ts';
import {
  AT,
  commit,
  deployStatus,
  instance,
  machine,
  phase,
  release,
  revision,
  SCOPE,
  volume,
} from './records.fixture.ts';

export const COMMITS = 60;
/** Small enough that the routing stream is trimmed: it starts after seq 1 (padding is exercised). */
export const ROUTING_MAX_MSGS = 40;

export async function fillSource(nc: NatsConnection): Promise<Store> {
  const store = await Store.fromConnection(nc, {
    ...SCOPE,
    routingRetention: { maxMsgs: ROUTING_MAX_MSGS, maxAgeMs: 0 },
  });
  for (const id of ['m1', 'm2', 'm3']) await store.machines.create(machine(id));
  const gone = await store.machines.get('m3');
  if (gone) await store.machines.delete(gone.key, gone.revision);
  for (let i = 0; i < COMMITS; i++) {
    const ns = i % 2 ? 'shop' : 'blog';
    const dep = `dep-${i}`;
    const st = await store.deployStatus.create(deployStatus(dep, { namespace: ns }));
    await store.deployStatus.update({ ...st.value, state: 'committed' }, st.revision);
    await store.deployPhases.create(phase(dep, 'p0'));
    const rev = `rev-${i.toString(16).padStart(16, '0')}`;
    await store.revisions.create(revision(rev, { namespace: ns }));
    await store.commits.append(commit(`${dep}.final`, { deploy_id: dep, namespace: ns }));
    const rel = release({ namespace: ns });
    await store.releases.save(rel, (await store.releases.get(ns, rel.service))?.revision ?? null);
    const inst = instance(`web-${i}-a`, { namespace: ns });
    await store.instances.create(inst);
    await store.routing.appendAll([
      { type: 'release_committed', release: rel, deploy_id: dep, at: AT },
      { type: 'instance_upserted', instance: inst, deploy_id: dep, at: AT },
    ]);
  }
  await store.volumes.create(volume('data'));
  const held = await store.leases.acquire(store.deployLockKey('shop'), { owner: 'a', ttlMs: 3_600_000 });
  const released = await store.leases.acquire(store.deployLockKey('blog'), { owner: 'b', ttlMs: 60_000 });
  await store.leases.release(released);
  void held;
  return store;
}
