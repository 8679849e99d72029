/**
 * machine drain / rm against a real nats-server: each is one compare-and-set on the record plus
 * its routing event; rm is refused (and changes nothing) while a release has a slot on the machine,
 * and --force says what it abandons.
 */
import { openStore, type Store } from '@ployz/store';
import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drainMachine, removeMachine } from '../../src/fleet/machine-lifecycle.ts';
import { machineRecord, wireguardKeys } from '../mesh/keys.ts';

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;
const now = new Date('2026-12-02T12:00:00.000Z');

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: 'lc', authority: 'auth-default' });
  for (const n of [1, 2, 3]) {
    await store.machines.create(
      machineRecord(`m${n}`, wireguardKeys().publicKey, {
        overlay_ip: `fd70:6c6f:797a:${n}::1`,
        subnet: `10.210.${n}.0/24`,
        endpoints: [`192.0.2.${n}:51820`],
      }),
    );
  }
  await store.releases.create({
    namespace: 'shop',
    service: 'web',
    revision: `rev-${'a'.repeat(32)}`,
    deploy: 'dep-aaaaaaaaaaaaaaaaa',
    slots: [
      { slot: 0, machine: 'm1', instance: 'shop-web-0-aaaaaaaa' },
      { slot: 1, machine: 'm2', instance: 'shop-web-1-bbbbbbbb' },
    ],
    updated_at: now.toISOString(),
  });
});
afterAll(async () => {
  await store?.close();
  await nats?.stop();
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    return isPloyzError(error) ? error.code : String(error);
  }
}

describe('machine drain and rm (real nats-server)', () => {
  it('drain sets draining once, with its routing event; a second drain changes nothing', async () => {
    const before = (await store.routing.lastSeq()) ?? 0;
    const first = await drainMachine(store, 'm2', now);
    expect(first).toMatchObject({ changed: true, machine: { id: 'm2', lifecycle: 'draining' } });
    expect((await store.machines.get('m2'))?.value.lifecycle).toBe('draining');
    expect(await store.routing.lastSeq()).toBe(before + 1);
    expect((await drainMachine(store, 'm2', now)).changed).toBe(false);
    expect(await store.routing.lastSeq()).toBe(before + 1);
    expect(await codeOf(drainMachine(store, 'm9', now))).toBe('NOT_FOUND');
  });

  it('rm is refused while a release has a slot there, changing nothing; --force names what it abandons', async () => {
    const revision = (await store.machines.get('m2'))?.revision;
    const seq = await store.routing.lastSeq();
    const refused = await removeMachine(store, 'm2', {
      force: false,
      self: 'm1',
      now,
      storage: ['m1'],
    }).catch((e: unknown) => e);
    expect(isPloyzError(refused, 'MACHINE_IN_USE')).toBe(true);
    expect((refused as { details?: unknown }).details).toMatchObject({ slots: ['shop/web#1'], volumes: [] });
    expect((await store.machines.get('m2'))?.revision).toBe(revision);
    expect(await store.routing.lastSeq()).toBe(seq);
    // This machine cannot remove itself.
    expect(await codeOf(removeMachine(store, 'm1', { force: true, self: 'm1', now, storage: [] }))).toBe(
      'INVALID_ARGUMENT',
    );
    const forced = await removeMachine(store, 'm2', { force: true, self: 'm1', now, storage: [] });
    expect(forced).toMatchObject({ changed: true, abandoned: { slots: ['shop/web#1'], volumes: [] } });
    expect((await store.machines.get('m2'))?.value.lifecycle).toBe('removed');
    // Removed is final: no drain, a second rm changes nothing.
    expect(await codeOf(drainMachine(store, 'm2', now))).toBe('INVALID_ARGUMENT');
    expect((await removeMachine(store, 'm2', { force: false, self: 'm1', now, storage: [] })).changed).toBe(
      false,
    );
  });

  it('rm of a storage machine is refused even with --force, changing nothing', async () => {
    const revision = (await store.machines.get('m3'))?.revision;
    const seq = await store.routing.lastSeq();
    for (const force of [false, true]) {
      const refused = await removeMachine(store, 'm3', {
        force,
        self: 'm1',
        now,
        storage: ['m1', 'm2', 'm3'],
      }).catch((e: unknown) => e);
      expect(isPloyzError(refused, 'MACHINE_IS_STORAGE')).toBe(true);
      expect((refused as { details?: unknown }).details).toMatchObject({
        machine: 'm3',
        storage: ['m1', 'm2', 'm3'],
      });
    }
    expect((await store.machines.get('m3'))?.revision).toBe(revision);
    expect(await store.routing.lastSeq()).toBe(seq);
  });

  it('rm of a machine that holds nothing needs no --force', async () => {
    const result = await removeMachine(store, 'm3', { force: false, self: 'm1', now, storage: [] });
    expect(result).toMatchObject({ changed: true, abandoned: { slots: [], volumes: [] } });
  });
});
