import { connect } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { isPloyzError, type PloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { type RecordBucket, Store } from '../src/index.ts';
import {
  deployStatus,
  instance,
  machine,
  phase,
  release,
  revision,
  SCOPE,
  serviceSpec,
  volume,
} from './records.fixture.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await Store.fromConnection(await connect({ servers: nats.url }), SCOPE);
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

async function conflict(p: Promise<unknown>): Promise<PloyzError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isPloyzError(err)) throw new Error(`expected a PloyzError, got ${String(err)}`);
  return err;
}

describe('typed records with compare-and-set', () => {
  /** The same life cycle for every record kind (generic, so each bucket keeps its types). */
  async function lifeCycle<S extends z.ZodType, P extends string[]>(
    bucket: RecordBucket<S, P>,
    a: z.input<S>,
    b: z.input<S>,
  ): Promise<void> {
    const created = await bucket.create(a);
    expect(created.revision).toBeGreaterThan(0);
    const read = await bucket.getByKey(created.key);
    expect(read?.value).toEqual(created.value);
    expect(read?.revision).toBe(created.revision);

    expect((await conflict(bucket.create(a))).code).toBe('STORE_CONFLICT');

    const updated = await bucket.update(b, created.revision);
    expect(updated.revision).toBeGreaterThan(created.revision);
    expect((await bucket.getByKey(created.key))?.value).toEqual(updated.value);

    // A writer still holding the old revision loses, and does not overwrite.
    expect((await conflict(bucket.update(a, created.revision))).code).toBe('STORE_CONFLICT');
    expect((await bucket.getByKey(created.key))?.value).toEqual(updated.value);

    // A listing carries each key's last value at the revision to update it from.
    const listed = (await bucket.list()).find((v) => v.key === created.key);
    expect(listed).toEqual({ key: created.key, value: updated.value, revision: updated.revision });
    expect((await conflict(bucket.delete(created.key, created.revision))).code).toBe('STORE_CONFLICT');
    await bucket.delete(created.key, updated.revision);
    expect(await bucket.getByKey(created.key)).toBeNull();
    expect((await bucket.list()).map((v) => v.key)).not.toContain(created.key);
    // Create works again over a delete marker.
    await bucket.create(a);
  }

  it('machines: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.machines, machine(), machine('m1', { lifecycle: 'draining' })));
  it('revisions: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.revisions, revision(), revision(undefined, { spec: serviceSpec({ image: 'web:2' }) })));
  it('releases: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.releases, release(), release({ deploy: 'dep-2' })));
  it('instances: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.instances, instance(), instance(undefined, { ready: false })));
  it('deployStatus: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.deployStatus, deployStatus(), deployStatus(undefined, { state: 'committed' })));
  it('deployPhases: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.deployPhases, phase(), phase(undefined, undefined, { state: 'done' })));
  it('volumes: create, read, CAS update, conflicts, delete', () =>
    lifeCycle(store.volumes, volume(), volume(undefined, { machine: 'm2' })));

  it('a filtered list holds only the matching keys, sorted, each once', async () => {
    const names = ['web-2-c', 'web-0-a', 'web-1-b'];
    for (const id of names) await store.instances.create(instance(id, { namespace: 'listed' }));
    await store.instances.create(instance('web-0-z', { namespace: 'other' }));
    const again = await store.instances.update(
      instance('web-1-b', { namespace: 'listed', ready: false }),
      (await store.instances.get('listed', 'web', 'web-1-b'))?.revision ?? 0,
    );
    const listed = await store.instances.list('listed.>');
    expect(listed.map((v) => v.value.id)).toEqual(['web-0-a', 'web-1-b', 'web-2-c']);
    expect(listed[1]).toEqual(again);
    expect(await store.instances.list('nothing-here.>')).toEqual([]);
  });

  it('keys follow the documented scheme', () => {
    expect(store.instances.keyOf(instance())).toBe('shop.web.web-0-a');
    expect(store.releases.key('shop', 'web')).toBe('shop.web');
    expect(store.deployPhases.key('dep-1', 'p0')).toBe('dep-1.p0');
    expect(store.revisions.keyOf(revision())).toBe('shop.web.rev-0123456789abcdef');
    expect(store.deployLockKey('shop')).toBe('cp.lock.deploy.shop');
  });

  it('refuses invalid records on write and corrupt ones on read', async () => {
    const bad = { ...machine('m9'), public_key: 'nope' };
    expect((await conflict(store.machines.create(bad))).code).toBe('INVALID_ARGUMENT');
    const raw = await connect({ servers: nats.url });
    try {
      const { Kvm } = await import('@nats-io/kv');
      const kv = await new Kvm(raw).open(store.names.machines);
      await kv.put('m8', JSON.stringify({ id: 'm8' }));
      expect((await conflict(store.machines.get('m8'))).code).toBe('STORE_CORRUPT');
    } finally {
      await raw.close();
    }
  });

  it('reads a revision whose spec is not a stored service spec as STORE_CORRUPT naming the field', async () => {
    const rev = revision('rev-00000000000000aa');
    const raw = await connect({ servers: nats.url });
    try {
      const { Kvm } = await import('@nats-io/kv');
      const kv = await new Kvm(raw).open(store.names.revisions);
      const old = { ...rev, spec: { routes: [{ http: { hostnames: ['a.example'] } }] } };
      await kv.put(store.revisions.keyOf(rev), JSON.stringify(old));
      const err = await conflict(store.revisions.getByKey(store.revisions.keyOf(rev)));
      expect(err.code).toBe('STORE_CORRUPT');
      expect(err.message).toContain('does not match its schema');
      const issues = (err.details?.issues ?? []) as { path: PropertyKey[] }[];
      expect(issues.map((i) => i.path[0])).toContain('spec');
    } finally {
      await raw.close();
    }
  });

  it('modify retries a lost race and applies the change once per attempt', async () => {
    await store.machines.create(machine('m5'));
    const results = await Promise.allSettled(
      Array.from({ length: 4 }, (_, i) =>
        store.machines.modify(
          ['m5'],
          (m) => (m ? { ...m, endpoints: [...m.endpoints, `10.0.0.${i}:1`] } : undefined),
          20,
        ),
      ),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect((await store.machines.get('m5'))?.value.endpoints).toHaveLength(5);
  });
  it('discard deletes whatever is current, even when a writer changed it since the last read', async () => {
    await store.machines.create(machine('m6'));
    // Writers keep changing the record while discard runs; discard re-reads and still deletes.
    const writers = Array.from({ length: 3 }, (_, i) =>
      store.machines.modify(['m6'], (m) => (m ? { ...m, endpoints: [`10.0.1.${i}:1`] } : undefined), 20),
    );
    await Promise.all([store.machines.discard(['m6'], 20), ...writers]);
    // A writer that came after the delete sees nothing and leaves it (modify returns undefined for null).
    await store.machines.discard(['m6']);
    expect(await store.machines.get('m6')).toBeNull();
    // Discarding what is not there is a no-op, not an error.
    await expect(store.machines.discard(['m-none'])).resolves.toBeUndefined();
  });
  it('storedKeys lists every stored key in one request, the same keys as a full listing', async () => {
    for (const id of ['k1', 'k2', 'k3']) await store.machines.create(machine(`sk-${id}`));
    const stored = (await store.machines.storedKeys()).filter((k) => k.startsWith('sk-'));
    expect(stored).toEqual(['sk-k1', 'sk-k2', 'sk-k3']);
    expect(stored).toEqual((await store.machines.keys()).filter((k) => k.startsWith('sk-')));
    // A deleted key may still be named (its tombstone is a message); reading it gives null.
    const k2 = await store.machines.get('sk-k2');
    await store.machines.delete('sk-k2', k2?.revision ?? 0);
    const after = (await store.machines.storedKeys()).filter((k) => k.startsWith('sk-'));
    expect(after).toEqual(expect.arrayContaining(['sk-k1', 'sk-k3']));
    for (const k of after.filter((k) => k === 'sk-k2')) expect(await store.machines.get(k)).toBeNull();
  });
});
