/**
 * A volume move's machine commands through a real nats-server: two "machines" (m1 source, m2
 * target) in this process, each a root dataset of one real zfs-fuse pool and its own RPC server;
 * the coordinator's calls prepare a slot on m2, send from m1 (the stream over 127.0.0.1, never RPC),
 * commit on m2, mark the source moved. And the listener bound inside a network namespace that
 * this test creates: reachable there, absent from the host's loopback.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { RpcClient, RpcServer, volumeMoveCommands } from '@ployz/protocol';
import { createZfsPool, startNats, type ZfsPool } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { zfsDriver } from '../storage/zfs.ts';
import { VolumeMoveService } from './handlers.ts';
import { connectIn, listenIn } from './netns-socket.ts';
import { zfsMove } from './zfs-move.ts';

const run = promisify(execFile);
const scope = { installation: 'inst', authority: 'auth-default' };
const quiet = { info: () => undefined, warn: () => undefined };

describe('volume move commands over RPC (real nats-server, real zfs-fuse)', () => {
  let pool: ZfsPool;
  beforeAll(async () => {
    pool = await createZfsPool({ sizeMiB: 256 });
  }, 120_000);
  afterAll(async () => {
    await pool?.destroy();
  });

  it('prepare on the target, send from the source, commit, mark moved; a token is used once', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    const roots = { m1: `${pool.pool}/m1`, m2: `${pool.pool}/m2` };
    const drivers = { m1: zfsDriver({ root: roots.m1 }), m2: zfsDriver({ root: roots.m2 }) };
    await drivers.m1.probe();
    await drivers.m2.probe();
    const services = (['m1', 'm2'] as const).map(
      (m) =>
        new VolumeMoveService({
          storage: () => zfsMove({ root: roots[m] }),
          overlayAddress: () => '127.0.0.1',
          netns: async () => null,
          addressOf: async () => '127.0.0.1',
          log: quiet,
          port: 0,
        }),
    );
    const servers = (['m1', 'm2'] as const).map((m, i) =>
      new RpcServer({ nc, scope, machine: m, commands: volumeMoveCommands }).handleAll(
        (services[i] as VolumeMoveService).handlers(),
      ),
    );
    for (const s of servers) s.start();
    try {
      await nc.flush();
      const volume = await drivers.m1.create({
        name: 'shop/data',
        quotaBytes: null,
        owner: { uid: 0, gid: 0 },
        mode: 0o755,
      });
      const content = randomBytes(2 * 1024 * 1024);
      await writeFile(join(volume.path, 'a.bin'), content);
      const bulk = await drivers.m1.snapshot(volume.dataset, 'dep-move1-bulk');
      await writeFile(join(volume.path, 'b.txt'), 'written after the bulk pass\n');
      const cutover = await drivers.m1.snapshot(volume.dataset, 'dep-move1-cutover');

      const client = new RpcClient({ nc, scope, commands: volumeMoveCommands, timeoutMs: 60_000 });
      const ref = { namespace: 'shop', volume: 'data', slot: null, move_id: 'dep-move1' };
      const passOf = async (snapshot: string, base: string | null, guid: string) => {
        const slot = await client.call('m2', 'volume_receive_prepare', {
          ...ref,
          machine: 'm2',
          snapshot,
          base,
          guid,
          source_machine: 'm1',
        });
        const sent = await client.call('m1', 'volume_send', {
          ...ref,
          machine: 'm1',
          snapshot,
          base,
          token: slot.token,
          target: { machine: 'm2', address: slot.address, port: slot.port },
        });
        return { slot, sent };
      };
      const first = await passOf('dep-move1-bulk', null, bulk.id);
      expect(first.sent).toMatchObject({
        driver: 'zfs',
        id: bulk.id,
        snapshot: 'dep-move1-bulk',
        base: null,
      });
      expect(first.sent.bytes).toBeGreaterThan(content.length);
      // The token was used by that pass: a second connection with it is refused.
      const again = await client
        .call('m1', 'volume_send', {
          ...ref,
          machine: 'm1',
          snapshot: 'dep-move1-bulk',
          base: null,
          token: first.slot.token,
          target: { machine: 'm2', address: first.slot.address, port: first.slot.port },
        })
        .catch((e: unknown) => e);
      expect(again).toMatchObject({ code: 'VOLUME_TRANSFER_REFUSED' });

      const second = await passOf('dep-move1-cutover', 'dep-move1-bulk', cutover.id);
      expect(second.sent).toMatchObject({ id: cutover.id, base: 'dep-move1-bulk' });
      // A commit of a snapshot no pass verified is refused; the verified one goes in place.
      const wrong = await client
        .call('m2', 'volume_receive_commit', {
          ...ref,
          machine: 'm2',
          snapshot: 'dep-move1-bulk',
          quota_bytes: null,
        })
        .catch((e: unknown) => e);
      expect(wrong).toMatchObject({ code: 'VOLUME_TRANSFER_FAILED' });
      const committed = await client.call('m2', 'volume_receive_commit', {
        ...ref,
        machine: 'm2',
        snapshot: 'dep-move1-cutover',
        quota_bytes: null,
      });
      expect(committed.dataset).toBe(`${roots.m2}/shop/data`);
      const moved = await drivers.m2.open('shop/data');
      expect(moved).toBeTruthy();
      expect(await readFile(join(moved?.path ?? '', 'a.bin'))).toEqual(content);
      expect(await readFile(join(moved?.path ?? '', 'b.txt'), 'utf8')).toBe('written after the bulk pass\n');

      const kept = await client.call('m1', 'volume_mark_moved', { ...ref, machine: 'm1' });
      expect(kept.kept).toBe(`${roots.m1}/shop/data_moved_dep-move1`);
      expect(await drivers.m1.open('shop/data')).toBeFalsy();

      // Each body names its machine.
      const misdirected = await client
        .call('m1', 'volume_receive_abort', { ...ref, machine: 'm2' })
        .catch((e: unknown) => e);
      expect(misdirected).toMatchObject({ code: 'RPC_WRONG_MACHINE' });
    } finally {
      for (const s of servers) await s.stop();
      for (const s of services) await s.close();
      await nc.close();
    }
  }, 180_000);
});

describe('the transfer listener in another network namespace', () => {
  it('listens on an address of that netns only; the host does not have it', async () => {
    const name = `ployz-vm-${process.pid}`;
    await run('ip', ['netns', 'add', name]);
    try {
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      await run('ip', ['-n', name, 'address', 'add', '127.0.0.9/8', 'dev', 'lo']);
      const netns = `/var/run/netns/${name}`;
      const server = await listenIn(netns, { host: '127.0.0.9', port: 0 });
      try {
        const address = server.address();
        if (address === null || typeof address === 'string') throw new Error('not listening');
        const got = new Promise<string>((resolve) =>
          server.once('connection', (s) => {
            s.setEncoding('utf8');
            let text = '';
            s.on('data', (t: string) => {
              text += t;
            });
            s.once('end', () => {
              s.end('bye\n'); // half-open: the answer after the peer ended
              resolve(text);
            });
          }),
        );
        const socket = await connectIn(netns, { host: '127.0.0.9', port: address.port }, '127.0.0.9');
        socket.setEncoding('utf8');
        let answer = '';
        socket.on('data', (t: string) => {
          answer += t;
        });
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.end('hello\n');
        expect(await got).toBe('hello\n');
        await closed;
        expect(answer).toBe('bye\n');
        // On the host's own loopback nothing listens on that port.
        const refused = await new Promise<string>((resolve) => {
          const probe = netConnect({ host: '127.0.0.1', port: address.port });
          probe.once('connect', () => {
            probe.destroy();
            resolve('connected');
          });
          probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        });
        expect(refused).toBe('ECONNREFUSED');
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    } finally {
      await run('ip', ['netns', 'delete', name]);
    }
  }, 60_000);
});
