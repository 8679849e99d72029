import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { isPloyzError, PloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  commandSubject,
  defineCommands,
  escapeToken,
  RpcClient,
  RpcServer,
  unescapeToken,
} from '../src/index.ts';

const scope = { installation: 'local', authority: 'auth-default' };

const core = defineCommands({
  ping: { request: z.object({}), response: z.object({ machine: z.string(), at: z.string() }) },
  capacity: {
    request: z.object({ cpu_millis: z.number().int().nonnegative() }),
    response: z.object({ fits: z.boolean(), free_cpu_millis: z.number() }),
  },
});
// The deploy engine extends the registry with its own commands.
const commands = defineCommands({
  ...core,
  start_instance: {
    request: z.object({ instance: z.string() }),
    response: z.object({ container_id: z.string() }),
  },
  slow: { request: z.object({ ms: z.number() }), response: z.object({}) },
});

let nats: Awaited<ReturnType<typeof startNats>>;
let nc: NatsConnection;
let server: RpcServer<typeof commands>;
let client: RpcClient<typeof commands>;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  server = new RpcServer({ nc, scope, machine: 'm1', commands });
  server
    .handle('ping', (_req, ctx) => ({ machine: ctx.machine, at: new Date().toISOString() }))
    .handle('capacity', (req) => ({ fits: req.cpu_millis <= 1000, free_cpu_millis: 1000 }))
    .handle('start_instance', (req) => {
      if (req.instance === 'taken') {
        throw new PloyzError('NAME_COLLISION', 'a container without Ployz labels holds that name', {
          details: { name: req.instance },
        });
      }
      if (req.instance === 'boom') throw new Error('disk on fire');
      return { container_id: `c-${req.instance}` };
    })
    .handle('slow', async (req) => {
      await new Promise((r) => setTimeout(r, req.ms));
      return {};
    });
  server.start();
  await nc.flush();
  client = new RpcClient({ nc, scope, commands, timeoutMs: 2000, caller: 'test' });
});
afterAll(async () => {
  await server?.stop();
  await nc?.close();
  await nats?.stop();
});

async function failure(p: Promise<unknown>): Promise<PloyzError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!isPloyzError(e)) throw new Error(`expected PloyzError, got ${String(e)}`);
  return e;
}

describe('subjects', () => {
  it('follow ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command> with escaped tokens', () => {
    expect(commandSubject(scope, 'm1', 'ping')).toBe('ployz.v1.local.auth-default.rpc.node.m1.ping');
    expect(commandSubject(scope, 'a.b', 'ping')).toBe('ployz.v1.local.auth-default.rpc.node.a=2Eb.ping');
    expect(unescapeToken(escapeToken('x*y >é'))).toBe('x*y >é');
  });
});

describe('machine-command RPC', () => {
  it('answers typed, validated calls', async () => {
    const pong = await client.call('m1', 'ping', {});
    expect(pong.machine).toBe('m1');
    expect(await client.call('m1', 'capacity', { cpu_millis: 500 })).toEqual({
      fits: true,
      free_cpu_millis: 1000,
    });
    expect(await client.call('m1', 'start_instance', { instance: 'web-0' })).toEqual({
      container_id: 'c-web-0',
    });
  });

  it('carries structured errors across with their code and details', async () => {
    const e = await failure(client.call('m1', 'start_instance', { instance: 'taken' }));
    expect(e.code).toBe('NAME_COLLISION');
    expect(e.details).toMatchObject({ name: 'taken', machine: 'm1', command: 'start_instance' });
    const boom = await failure(client.call('m1', 'start_instance', { instance: 'boom' }));
    expect(boom.code).toBe('RPC_REMOTE_ERROR');
    expect(boom.message).toMatch(/disk on fire/);
  });

  it('refuses invalid requests on the client and on the server', async () => {
    const bad = await failure(client.call('m1', 'capacity', { cpu_millis: -1 }));
    expect(bad.code).toBe('RPC_BAD_REQUEST');
    const raw = await nc.request(
      commandSubject(scope, 'm1', 'capacity'),
      JSON.stringify({ v: 1, caller: null, request: { cpu_millis: 'lots' } }),
      { timeout: 2000 },
    );
    expect(raw.json<{ ok: boolean; error: { code: string } }>()).toMatchObject({
      ok: false,
      error: { code: 'RPC_BAD_REQUEST' },
    });
  });

  // The call's own timeout is far beyond the test's: waiting for it instead of answering at once
  // is caught by the hang guard, not by a wall-clock bound.
  it('no responder is RPC_NO_RESPONDERS at once, not a timeout', { timeout: 10_000 }, async () => {
    const e = await failure(client.call('m2', 'ping', {}, { timeoutMs: 600_000 }));
    expect(e.code).toBe('RPC_NO_RESPONDERS');
    expect(e.details).toMatchObject({ machine: 'm2', command: 'ping' });
  });

  it('a slow machine is RPC_TIMEOUT and nothing is retried', async () => {
    let calls = 0;
    let answer!: () => void;
    const held = new Promise<void>((r) => {
      answer = r;
    });
    const counting = new RpcServer({ nc, scope, machine: 'm3', commands });
    counting.handle('slow', async () => {
      calls++;
      await held; // answers only once the caller has given up
      return {};
    });
    counting.start();
    await nc.flush();
    try {
      const e = await failure(client.call('m3', 'slow', { ms: 0 }, { timeoutMs: 300 }));
      expect(e.code).toBe('RPC_TIMEOUT');
      expect(e.details).toMatchObject({ machine: 'm3', command: 'slow' });
      // A retry would have been published before the failure; a round trip delivers it.
      await nc.flush();
      expect(calls).toBe(1);
    } finally {
      answer();
      await counting.stop();
    }
  });

  it('a queue group per machine: two listeners for one machine answer each call once', async () => {
    const seen: string[] = [];
    const nc2 = await connect({ servers: nats.url });
    const a = new RpcServer({ nc, scope, machine: 'm4', commands }).handle('ping', () => {
      seen.push('a');
      return { machine: 'm4', at: 'a' };
    });
    const b = new RpcServer({ nc: nc2, scope, machine: 'm4', commands }).handle('ping', () => {
      seen.push('b');
      return { machine: 'm4', at: 'b' };
    });
    a.start();
    b.start();
    await Promise.all([nc.flush(), nc2.flush()]);
    try {
      for (let i = 0; i < 20; i++) await client.call('m4', 'ping', {});
      expect(seen).toHaveLength(20);
    } finally {
      await a.stop();
      await b.stop();
      await nc2.close();
    }
  });

  it('a command without a handler on the machine is RPC_BAD_REQUEST naming the known ones', async () => {
    const partial = new RpcServer({ nc, scope, machine: 'm5', commands }).handle('ping', () => ({
      machine: 'm5',
      at: 'x',
    }));
    partial.start();
    await nc.flush();
    try {
      const e = await failure(client.call('m5', 'capacity', { cpu_millis: 1 }));
      expect(e.code).toBe('RPC_BAD_REQUEST');
      expect(e.message).toMatch(/knows: ping/);
    } finally {
      await partial.stop();
    }
  });

  // The machine answers only after the aborted call has settled, and the call's own timeout is far
  // beyond the test's: a call that kept waiting would hang into the hang guard.
  it('handleAll registers a handler per command; an aborted call stops waiting at once', {
    timeout: 10_000,
  }, async () => {
    const all = new RpcServer({ nc, scope, machine: 'm6', commands: core }).handleAll({
      ping: (_req, ctx) => ({ machine: ctx.machine, at: 'all' }),
      capacity: (req) => ({ fits: false, free_cpu_millis: req.cpu_millis }),
    });
    expect(all.commands()).toEqual(['capacity', 'ping']);
    let received!: () => void;
    const arrived = new Promise<void>((r) => {
      received = r;
    });
    let answer!: () => void;
    const held = new Promise<void>((r) => {
      answer = r;
    });
    let answered = false;
    const slow = new RpcServer({ nc, scope, machine: 'm7', commands }).handle('slow', async () => {
      received();
      await held;
      answered = true;
      return {};
    });
    all.start();
    slow.start();
    await nc.flush();
    try {
      expect(await client.call('m6', 'ping', {})).toEqual({ machine: 'm6', at: 'all' });
      const ac = new AbortController();
      const pending = client.call('m7', 'slow', { ms: 0 }, { timeoutMs: 600_000, signal: ac.signal });
      await arrived;
      ac.abort(new Error('caller gave up'));
      await expect(pending).rejects.toThrow(/caller gave up/);
      expect(answered).toBe(false);
      // An already-aborted signal refuses the call before anything is sent.
      await expect(client.call('m6', 'ping', {}, { signal: ac.signal })).rejects.toThrow(/caller gave up/);
    } finally {
      answer();
      await all.stop();
      await slow.stop();
    }
  });

  it('refuses command names that are not tokens', () => {
    expect(() => defineCommands({ 'Bad.Name': { request: z.object({}), response: z.object({}) } })).toThrow(
      /must match/,
    );
  });
});
