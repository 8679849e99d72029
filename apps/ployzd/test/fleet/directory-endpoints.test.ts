/** The machine record's endpoints on ployzd start (real nats-server): created, kept, or replaced by compare-and-set. */
import { openStore, type Store } from '@ployz/store';
import { startNats } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MachineDirectory, machineRecordFor } from '../../src/machine/directory.ts';
import type { MachineIdentity } from '../../src/machine/identity.ts';
import { wireguardKeys } from '../mesh/keys.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: 'local', authority: 'auth-default' });
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

const identity: MachineIdentity = {
  installation: 'local',
  authority: 'auth-default',
  machine_id: 'm1',
  public_key: wireguardKeys().publicKey,
  overlay_ip: 'fd70:6c6f:797a:1::1',
  overlay_prefix_length: 48,
  subnet: '10.210.4.0/24',
  region: 'default',
  created_at: '2026-12-01T00:00:00.000Z',
};

describe('MachineDirectory.ensure', () => {
  it('creates, keeps unchanged endpoints, and replaces changed ones with an event', async () => {
    const directory = new MachineDirectory(store);
    const first = await directory.ensure(
      machineRecordFor(identity, ['192.0.2.1:51820'], '2026-12-01T00:00:00.000Z'),
    );
    expect(first).toMatchObject({ created: true, updated: false });
    const seq = await store.routing.lastSeq();

    const same = await directory.ensure(
      machineRecordFor(identity, ['192.0.2.1:51820'], '2026-12-02T00:00:00.000Z'),
    );
    expect(same).toMatchObject({ created: false, updated: false });
    expect(same.record.updated_at).toBe('2026-12-01T00:00:00.000Z');
    expect(await store.routing.lastSeq()).toBe(seq);

    const before = await store.machines.get('m1');
    const moved = await directory.ensure(
      machineRecordFor(identity, ['192.0.2.9:51820'], '2026-12-03T00:00:00.000Z'),
    );
    expect(moved).toMatchObject({ created: false, updated: true });
    const after = await store.machines.get('m1');
    expect(after?.value.endpoints).toEqual(['192.0.2.9:51820']);
    expect(after?.revision).toBeGreaterThan(before?.revision ?? Number.POSITIVE_INFINITY);
    expect(await store.routing.lastSeq()).toBe((seq ?? 0) + 1);
    const snapshot = await store.routing.snapshot();
    expect(snapshot.machines.find((m) => m.id === 'm1')?.endpoints).toEqual(['192.0.2.9:51820']);
  });

  it('replaces only the endpoints: what another writer changed stays', async () => {
    const directory = new MachineDirectory(store);
    const current = await store.machines.get('m1');
    if (current === null) throw new Error('m1 missing');
    // Another writer drains the machine between two ensures; the endpoint change must not undo it.
    await store.machines.update({ ...current.value, lifecycle: 'draining' }, current.revision);
    await directory.ensure(machineRecordFor(identity, ['192.0.2.10:51820'], '2026-12-04T00:00:00.000Z'));
    expect((await store.machines.get('m1'))?.value).toMatchObject({
      lifecycle: 'draining',
      endpoints: ['192.0.2.10:51820'],
    });
  });
});
