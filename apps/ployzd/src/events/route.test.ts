/**
 * The `events` route on a real nats-server: the store's routing feed, served by @ployz/protocol's
 * LocalApiServer on a unix socket and read with LocalApiClient (what ployzctl does).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalApiClient, LocalApiServer } from '@ployz/protocol';
import { openStore, type Store } from '@ployz/store';
import { fixtures, startNats } from '@ployz/testkit';
import type { InstanceRecord } from '@ployz/types';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../daemon/config.ts';
import { Daemon } from '../daemon/daemon.ts';
import { connectDocker, DockerEngine } from '../runtime/docker.ts';
import { NatsLink } from '../runtime/nats-link.ts';
import { eventLine, eventsPlugin, streamEvents } from './route.ts';

const { AT } = fixtures;
const machine = fixtures.machine('m1', { endpoints: [] });
function instance(id: string, namespace: string): InstanceRecord {
  return fixtures.instance(id, { namespace });
}

let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;
let dir = '';
let server: LocalApiServer;
let client: LocalApiClient;
const ended: unknown[] = [];

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: 'local', authority: 'auth-default' });
  await store.routing.append({ type: 'machine_upserted', machine, deploy_id: null, at: AT });
  await store.routing.append({
    type: 'instance_upserted',
    instance: instance('web-0-a', 'shop'),
    deploy_id: 'dep-1',
    at: AT,
  });
  await store.routing.append({
    type: 'instance_removed',
    instance_id: 'web-0-z',
    deploy_id: 'dep-1',
    at: AT,
  });
  dir = await mkdtemp(join(tmpdir(), 'ployzd-events-'));
  server = new LocalApiServer();
  server.implement('events', async (q, { emit, signal }) => {
    try {
      const end = await streamEvents(store.routing, q, emit, signal);
      ended.push(end);
      return end;
    } catch (error) {
      ended.push(error);
      throw error;
    }
  });
  await server.listen(join(dir, 'api.sock'));
  client = new LocalApiClient({ socketPath: join(dir, 'api.sock') });
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  await store?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('events route', () => {
  it('eventLine names namespace, service, instance, machine and deploy of each type', () => {
    const line = eventLine({
      seq: 7,
      event: { type: 'instance_upserted', instance: instance('web-0-a', 'shop'), deploy_id: 'dep-1', at: AT },
    });
    expect(line).toMatchObject({
      seq: 7,
      type: 'instance_upserted',
      at: AT,
      deploy_id: 'dep-1',
      namespace: 'shop',
      service: 'web',
      instance: 'web-0-a',
      machine: 'm1',
    });
    expect(
      eventLine({ seq: 1, event: { type: 'machine_removed', machine_id: 'm9', deploy_id: null, at: AT } }),
    ).toMatchObject({ machine: 'm9', namespace: null, instance: null });
  });

  it('without follow, sends the stored events from a sequence and ends caught up', async () => {
    const all = [];
    let result: unknown = null;
    for await (const item of client.stream('events', { follow: 'false' })) {
      if (item.kind === 'progress') all.push(item.progress);
      else result = item.result;
    }
    expect(all.map((e) => [e.seq, e.type])).toEqual([
      [1, 'machine_upserted'],
      [2, 'instance_upserted'],
      [3, 'instance_removed'],
    ]);
    expect(all[1]).toMatchObject({ namespace: 'shop', instance: 'web-0-a', deploy_id: 'dep-1' });
    expect(result).toEqual({ reason: 'caught_up', last_seq: 3 });

    const from2 = [];
    for await (const item of client.stream('events', { follow: 'false', from_seq: 2, namespace: 'shop' })) {
      if (item.kind === 'progress') from2.push(item.progress.seq);
    }
    expect(from2).toEqual([2]);

    const none = await client.call('events', { follow: 'false', from_seq: 50 });
    expect(none).toEqual({ reason: 'caught_up', last_seq: 49 });
  });

  it('with follow, sends events appended later and stops when the client goes away', async () => {
    const ac = new AbortController();
    const got: number[] = [];
    ended.length = 0;
    const reading = (async () => {
      for await (const item of client.stream(
        'events',
        { follow: 'true', from_seq: 3 },
        { signal: ac.signal },
      )) {
        if (item.kind === 'progress') {
          got.push(item.progress.seq as number);
          if (got.length === 2) ac.abort();
        }
      }
    })().catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 300));
    await store.routing.append({
      type: 'instance_upserted',
      instance: instance('api-0-a', 'other'),
      deploy_id: 'dep-2',
      at: AT,
    });
    await reading;
    expect(got).toEqual([3, 4]);
    // The handler ends once the client has gone: the server does not keep following.
    for (let i = 0; i < 50 && ended.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(ended).toEqual([{ reason: 'client_closed', last_seq: 4 }]);
  });
});

describe('events plugin in the daemon', () => {
  it('answers STORE_UNAVAILABLE before NATS, then streams from the store once started', async () => {
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const plugin = eventsPlugin();
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), pino({ level: 'silent' }), [plugin]);
    await daemon.start();
    const link = new NatsLink(nats.url);
    const local = new LocalApiClient({ socketPath: config.socketPath });
    try {
      expect(daemon.api.missing()).not.toContain('events');
      await expect(local.call('events', { follow: 'false' })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
      });
      link.start();
      await link.ready();
      // The daemon's one Store (DaemonContext.store()) on that link.
      await plugin.start?.(
        { ...daemon.context, nats: () => link, store: () => store },
        {
          installation: 'local',
          authority: 'auth-default',
          machine_id: 'm1',
          public_key: 'K=',
          overlay_ip: 'fd00::1',
          overlay_prefix_length: 64,
          subnet: '10.210.1.0/24',
          region: 'local',
          created_at: AT,
        },
      );
      const seqs: number[] = [];
      for await (const item of local.stream('events', { follow: 'false', from_seq: 2 })) {
        if (item.kind === 'progress') seqs.push(item.progress.seq as number);
      }
      expect(seqs).toEqual([2, 3, 4]);
    } finally {
      await local.close();
      await plugin.stop?.();
      await daemon.stop();
      await link.close();
    }
  });
});
