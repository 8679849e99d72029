/**
 * Volume-move passes between two "machines" in one process: two driver roots on one real zfs-fuse
 * pool (and on one real btrfs loop), the receiver listening on 127.0.0.1, the sender connecting
 * from 127.0.0.1 (or 127.0.0.2 for a peer that is not the source). Real zfs send/recv and btrfs
 * send/receive; a byte-flipping TCP relay for the tampered stream.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { type BtrfsLoop, createBtrfsLoop, createZfsPool, type ZfsPool } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { btrfsDriver } from '../storage/btrfs.ts';
import { parseVolumeName } from '../storage/names.ts';
import type { VolumeDriver } from '../storage/port.ts';
import { zfsDriver } from '../storage/zfs.ts';
import { btrfsMove } from './btrfs-move.ts';
import { encodeHeader } from './header.ts';
import type { MoveStorage } from './move-storage.ts';
import { type TransferLog, TransferReceiver } from './receiver.ts';
import { sendVolume, type TransferProgress } from './sender.ts';
import { hashTree } from './tree-hash.ts';
import { zfsMove } from './zfs-move.ts';

const VOLUME = 'shop/data';
const NAME = parseVolumeName(VOLUME);

interface Machine {
  driver: VolumeDriver;
  move: MoveStorage;
}

interface Side {
  source: Machine;
  target: Machine;
}

function recordingLog(): TransferLog & { warnings: Array<Record<string, unknown>> } {
  const warnings: Array<Record<string, unknown>> = [];
  return {
    warnings,
    info: () => undefined,
    warn: (fields, message) => warnings.push({ ...fields, message }),
  };
}

async function listen(side: Side, options: { tokenTtlMs?: number; idleMs?: number } = {}) {
  const log = recordingLog();
  const receiver = await TransferReceiver.listen({
    address: '127.0.0.1',
    port: 0,
    storage: side.target.move,
    log,
    ...options,
  });
  return { receiver, log };
}

async function writeTree(path: string, seed: string, mib: number): Promise<void> {
  await mkdir(join(path, 'dir', 'deeper'), { recursive: true });
  await writeFile(join(path, `big-${seed}.bin`), randomBytes(mib * 1024 * 1024));
  await writeFile(join(path, 'dir', `small-${seed}.txt`), `written in ${seed}\n`);
  await writeFile(join(path, 'dir', 'deeper', 'mode.sh'), '#!/bin/sh\n');
  await chmod(join(path, 'dir', 'deeper', 'mode.sh'), 0o750);
  await symlink(`small-${seed}.txt`, join(path, 'dir', `link-${seed}`)).catch(() => undefined);
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'resolved',
    (error: unknown) => String((error as { code?: unknown }).code ?? error),
  );
}

/** A relay to the receiver that flips two bytes of the client's stream once `at` bytes went by. */
async function tamperingRelay(to: { host: string; port: number }, at: number): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (client: Socket) => {
    const upstream = connect({ ...to, localAddress: '127.0.0.1', allowHalfOpen: true });
    let seen = 0;
    let flipped = false;
    client.on('data', (chunk: Buffer) => {
      if (!flipped && seen + chunk.length > at) {
        const i = Math.max(0, at - seen);
        chunk[i] = (chunk[i] ?? 0) ^ 0xff;
        if (i + 1 < chunk.length) chunk[i + 1] = (chunk[i + 1] ?? 0) ^ 0xff;
        flipped = true;
      }
      seen += chunk.length;
      upstream.write(chunk);
    });
    client.on('end', () => upstream.end());
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function describeTransfer(kind: 'zfs' | 'btrfs', refusals: boolean, setup: () => Promise<Side>) {
  describe(`${kind} volume move passes`, () => {
    let side: Side;
    beforeAll(async () => {
      side = await setup();
    }, 120_000);

    async function freshSource(mib = 4) {
      const old = await side.source.driver.open(VOLUME);
      if (old) await side.source.driver.destroy(old.dataset);
      const volume = await side.source.driver.create({
        name: VOLUME,
        quotaBytes: null,
        owner: { uid: 0, gid: 0 },
        mode: 0o755,
      });
      await writeTree(volume.path, 'one', mib);
      return volume;
    }

    async function pass(
      receiver: TransferReceiver,
      moveId: string,
      snapshot: string,
      base: string | null,
      guid: string,
      extra: { onProgress?: (p: TransferProgress) => void; signal?: AbortSignal } = {},
    ) {
      const slot = await receiver.prepare({
        volume: VOLUME,
        moveId,
        snapshot,
        base,
        guid,
        sourceAddress: '127.0.0.1',
      });
      const sent = sendVolume({
        storage: side.source.move,
        volume: VOLUME,
        moveId,
        snapshot,
        base,
        token: slot.token,
        target: receiver.address,
        localAddress: '127.0.0.1',
        ...extra,
      });
      return { slot, sent };
    }

    it('moves a volume in two verified passes, renames it into place and keeps the source as _moved_', async () => {
      const { receiver, log } = await listen(side);
      try {
        const volume = await freshSource();
        const bulk = await side.source.driver.snapshot(volume.dataset, 'm1-bulk');
        const stages = new Set<string>();
        const first = await pass(receiver, 'm1', 'm1-bulk', null, bulk.id, {
          onProgress: (p) => stages.add(p.stage),
        });
        const sent1 = await first.sent;
        const got1 = await first.slot.done;
        expect(got1).toEqual(sent1);
        expect(got1).toMatchObject({ id: bulk.id, snapshot: 'm1-bulk', base: null, driver: kind });
        expect(got1.bytes).toBeGreaterThan(4 * 1024 * 1024);
        expect([...stages]).toEqual(['reading', 'connecting', 'sending', 'verifying', 'done']);

        // Writers ran on during the bulk pass; the increment carries what they wrote.
        await writeTree(volume.path, 'two', 1);
        const final = await side.source.driver.snapshot(volume.dataset, 'm1-final');
        const second = await pass(receiver, 'm1', 'm1-final', 'm1-bulk', final.id);
        const got2 = await second.slot.done;
        expect(await second.sent).toEqual(got2);
        expect(got2).toMatchObject({ id: final.id, base: 'm1-bulk' });
        expect(got2.bytes).toBeLessThan(got1.bytes);
        if (kind === 'btrfs') expect(got2.sha256).toMatch(/^[0-9a-f]{64}$/);

        expect(await side.target.driver.open(VOLUME)).toBeUndefined(); // not in place before the commit
        const placed = await side.target.move.commit(NAME, 'm1', 'm1-final', null);
        expect(await side.target.move.hasTemporary(NAME, 'm1')).toBe(false);
        expect(await side.target.driver.open(VOLUME)).toEqual(placed);
        expect((await hashTree(placed.path)).sha256).toBe((await hashTree(volume.path)).sha256);
        expect((await side.target.driver.snapshots(placed.dataset)).map((s) => [s.label, s.id])).toEqual([
          ['m1-bulk', kind === 'zfs' ? bulk.id : expect.any(String)],
          ['m1-final', kind === 'zfs' ? final.id : expect.any(String)],
        ]);
        await writeFile(join(placed.path, 'after-move.txt'), 'the target is writable');

        const { kept } = await side.source.move.markMoved(NAME, 'm1');
        expect(kept).toContain('data_moved_m1');
        expect(await side.source.driver.open(VOLUME)).toBeUndefined();
        expect(receiver.stats()).toMatchObject({ accepted: 2, verified: 2, failed: 0, refused: {} });
        expect(log.warnings).toEqual([]);
        await side.target.driver.destroy(placed.dataset);
      } finally {
        await receiver.close();
      }
    }, 120_000);

    it('a tampered stream fails its checksum on receipt: mismatch, the temporary copy destroyed', async () => {
      const { receiver } = await listen(side);
      const relay = await tamperingRelay(receiver.address, 2 * 1024 * 1024);
      try {
        const volume = await freshSource();
        const snap = await side.source.driver.snapshot(volume.dataset, 't1-bulk');
        const slot = await receiver.prepare({
          volume: VOLUME,
          moveId: 't1',
          snapshot: 't1-bulk',
          base: null,
          guid: snap.id,
          sourceAddress: '127.0.0.1',
        });
        const address = relay.address();
        if (address === null || typeof address === 'string') throw new Error('relay not listening');
        const sent = sendVolume({
          storage: side.source.move,
          volume: VOLUME,
          moveId: 't1',
          snapshot: 't1-bulk',
          base: null,
          token: slot.token,
          target: { host: '127.0.0.1', port: address.port },
          localAddress: '127.0.0.1',
        });
        expect(await codeOf(slot.done)).toBe('VOLUME_TRANSFER_MISMATCH');
        expect(await codeOf(sent)).toBe('VOLUME_TRANSFER_MISMATCH');
        expect(await side.target.move.hasTemporary(NAME, 't1')).toBe(false);
        expect(await side.target.driver.open(VOLUME)).toBeUndefined();
        expect(receiver.stats()).toMatchObject({ accepted: 1, verified: 0, failed: 1 });
      } finally {
        relay.close();
        await receiver.close();
      }
    }, 120_000);

    it('a sender killed mid-stream leaves nothing on the target', async () => {
      const { receiver } = await listen(side);
      try {
        const volume = await freshSource(16);
        const snap = await side.source.driver.snapshot(volume.dataset, 'k1-bulk');
        const abort = new AbortController();
        const { slot, sent } = await pass(receiver, 'k1', 'k1-bulk', null, snap.id, {
          signal: abort.signal,
          onProgress: (p) => {
            if (p.stage === 'sending' && p.bytes > 0) abort.abort();
          },
        });
        expect(await codeOf(sent)).toBe('VOLUME_TRANSFER_FAILED');
        // Cut mid-record: the receive tool fails; cut between records (btrfs): the tree sha256 differs.
        expect(['VOLUME_TRANSFER_FAILED', 'VOLUME_TRANSFER_MISMATCH']).toContain(await codeOf(slot.done));
        expect(await side.target.move.hasTemporary(NAME, 'k1')).toBe(false);
        expect(await side.target.driver.open(VOLUME)).toBeUndefined();
      } finally {
        await receiver.close();
      }
    }, 120_000);

    if (!refusals) return;

    it('refuses a wrong, reused or expired token and a peer that is not the source; nothing is received', async () => {
      const { receiver, log } = await listen(side, { tokenTtlMs: 4_000 });
      try {
        const volume = await freshSource(1);
        const snap = await side.source.driver.snapshot(volume.dataset, 'r1-bulk');
        const send = (token: string, localAddress = '127.0.0.1', moveId = 'r1') =>
          sendVolume({
            storage: side.source.move,
            volume: VOLUME,
            moveId,
            snapshot: 'r1-bulk',
            base: null,
            token,
            target: receiver.address,
            localAddress,
          });
        const prepare = (moveId: string) =>
          receiver.prepare({
            volume: VOLUME,
            moveId,
            snapshot: 'r1-bulk',
            base: null,
            guid: snap.id,
            sourceAddress: '127.0.0.1',
          });

        // Unknown token: refused, the real slot stays usable.
        const slot = await prepare('r1');
        expect(await codeOf(send(randomBytes(32).toString('base64url')))).toBe('VOLUME_TRANSFER_REFUSED');
        expect(await side.target.move.hasTemporary(NAME, 'r1')).toBe(false);
        // A second slot for the same move while one is open: busy.
        expect(await codeOf(prepare('r1'))).toBe('STORAGE_BUSY');
        // Peer not the source: refused, and the token is spent.
        expect(await codeOf(send(slot.token, '127.0.0.2'))).toBe('VOLUME_TRANSFER_REFUSED');
        expect(await codeOf(slot.done)).toBe('VOLUME_TRANSFER_REFUSED');
        expect(await side.target.move.hasTemporary(NAME, 'r1')).toBe(false);

        // Used token: the first connection moves the pass, the second is refused.
        const once = await prepare('r2');
        await send(once.token, '127.0.0.1', 'r2');
        expect((await once.done).id).toBe(snap.id);
        expect(await codeOf(send(once.token, '127.0.0.1', 'r2'))).toBe('VOLUME_TRANSFER_REFUSED');
        await side.target.move.discard(NAME, 'r2');

        // Expired: the slot fails unused; a late connection is refused.
        const late = await prepare('r3');
        expect(await codeOf(late.done)).toBe('VOLUME_TRANSFER_FAILED');
        expect(await codeOf(send(late.token, '127.0.0.1', 'r3'))).toBe('VOLUME_TRANSFER_REFUSED');
        expect(await side.target.move.hasTemporary(NAME, 'r3')).toBe(false);

        // A header naming another snapshot than the slot's: refused.
        const other = await side.source.driver.snapshot(volume.dataset, 'r4-other');
        const wrong = await prepare('r4');
        const mismatched = sendVolume({
          storage: side.source.move,
          volume: VOLUME,
          moveId: 'r4',
          snapshot: 'r4-other',
          base: null,
          token: wrong.token,
          target: receiver.address,
          localAddress: '127.0.0.1',
        });
        expect(await codeOf(mismatched)).toBe('VOLUME_TRANSFER_REFUSED');
        expect(await codeOf(wrong.done)).toBe('VOLUME_TRANSFER_REFUSED');
        void other;

        expect(receiver.stats().refused).toEqual({
          'unknown or used token': 3,
          'peer is not the source machine': 1,
          'header does not match the issued slot': 1,
        });
        expect(log.warnings.filter((w) => w.message === 'volume transfer connection refused')).toHaveLength(
          5,
        );
        expect(receiver.stats()).toMatchObject({ accepted: 1, verified: 1 });
      } finally {
        await receiver.close();
      }
    }, 120_000);

    it('drops a malformed or oversized header and a connection that stalls after it', async () => {
      const { receiver } = await listen(side, { idleMs: 500 });
      try {
        const volume = await freshSource(1);
        const snap = await side.source.driver.snapshot(volume.dataset, 'i1-bulk');
        const raw = async (bytes: Buffer | string): Promise<string> =>
          new Promise((resolve) => {
            const socket = connect({ ...receiver.address, localAddress: '127.0.0.1' });
            let answer = '';
            socket.setEncoding('utf8');
            socket.on('data', (text: string) => {
              answer += text;
            });
            socket.on('error', () => undefined);
            socket.on('close', () => resolve(answer));
            socket.write(bytes);
          });
        expect(await raw('not json\n')).toContain('VOLUME_TRANSFER_REFUSED');
        expect(await raw(Buffer.alloc(5000, 'a'))).toContain('header over 4 KiB');
        expect(receiver.stats().refused).toMatchObject({
          'malformed header: header is not JSON': 1,
          'header over 4 KiB': 1,
        });

        // A valid header, then no bytes: the pass fails on the idle limit and nothing stays.
        const slot = await receiver.prepare({
          volume: VOLUME,
          moveId: 'i1',
          snapshot: 'i1-bulk',
          base: null,
          guid: snap.id,
          sourceAddress: '127.0.0.1',
        });
        const header = encodeHeader({
          v: 1,
          token: slot.token,
          ns: NAME.namespace,
          volume: NAME.volume,
          driver: kind,
          snapshot: 'i1-bulk',
          base: null,
          guid: snap.id,
          ...(kind === 'btrfs' ? { sha256: '0'.repeat(64) } : {}),
        });
        const answer = raw(header);
        const error = await slot.done.catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'VOLUME_TRANSFER_FAILED', details: { reason: 'idle' } });
        expect(await answer).toContain('"stage":"accepted"');
        expect(await side.target.move.hasTemporary(NAME, 'i1')).toBe(false);
      } finally {
        await receiver.close();
      }
    }, 120_000);

    it('never listens on a wildcard address', async () => {
      for (const address of ['0.0.0.0', '::', 'localhost']) {
        const error = await TransferReceiver.listen({
          address,
          port: 0,
          storage: side.target.move,
          log: recordingLog(),
        }).catch((e: unknown) => e);
        expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
      }
    });
  });
}

// One zfs-fuse pool for the file; each side is a root dataset of it.
let pool: ZfsPool | undefined;
let loop: BtrfsLoop | undefined;
afterAll(async () => {
  const cleanup = await Promise.allSettled([pool?.destroy(), loop?.destroy()]);
  for (const r of cleanup) if (r.status === 'rejected') throw r.reason;
});

describeTransfer('zfs', true, async () => {
  pool = await createZfsPool({ sizeMiB: 256 });
  const machine = async (root: string): Promise<Machine> => {
    const driver = zfsDriver({ root });
    await driver.probe();
    return { driver, move: zfsMove({ root }) };
  };
  return { source: await machine(`${pool.pool}/m1`), target: await machine(`${pool.pool}/m2`) };
});

describeTransfer('btrfs', false, async () => {
  loop = await createBtrfsLoop({ sizeMiB: 512 });
  const machine = async (root: string): Promise<Machine> => {
    const driver = btrfsDriver({ root });
    await driver.probe();
    return { driver, move: btrfsMove({ root }) };
  };
  return { source: await machine(join(loop.path, 'm1')), target: await machine(join(loop.path, 'm2')) };
});
