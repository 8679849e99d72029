import { connect } from '@nats-io/transport-node';
import { defineCommands, RpcClient } from '@ployz/protocol';
import { startNats } from '@ployz/testkit';
import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AgentRpc, escapeSubjectToken, nodeSubjectPrefix } from './agent-rpc.ts';
import { measureCapacity, parseMemAvailable } from './capacity.ts';

describe('AgentRpc on a real nats-server', () => {
  it('answers registered commands on the machine subject and carries errors with their code', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    const prefix = nodeSubjectPrefix('inst', 'auth-default', 'm1');
    expect(prefix).toBe('ployz.v1.inst.auth-default.rpc.node.m1');
    const agent = new AgentRpc(prefix);
    agent.register('ping', () => ({ pong: true }));
    agent.register('capacity', () => measureCapacity('/'));
    agent.register('fail', () => {
      throw new PloyzError('NOT_FOUND', 'no such instance');
    });
    agent.start(nc);
    const ask = async (cmd: string, body = '') =>
      JSON.parse(
        new TextDecoder().decode((await nc.request(`${prefix}.${cmd}`, body, { timeout: 2000 })).data),
      );

    expect(await ask('ping')).toEqual({ ok: true, result: { pong: true } });
    expect(await ask('ping', JSON.stringify({ v: 1, caller: 'test', request: null }))).toEqual({
      ok: true,
      result: { pong: true },
    });
    const cap = await ask('capacity');
    expect(cap.ok).toBe(true);
    expect(cap.result.cpus).toBeGreaterThan(0);
    expect(cap.result.memory_total_bytes).toBeGreaterThan(cap.result.memory_available_bytes);
    expect(cap.result.disk_free_bytes).toBeGreaterThan(0);
    expect(await ask('fail')).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'no such instance' },
    });
    expect((await ask('nope')).error.code).toBe('RPC_BAD_REQUEST');
    expect((await ask('ping', '{not json')).error.code).toBe('RPC_BAD_REQUEST');

    // @ployz/protocol's typed client talks to this agent.
    const commands = defineCommands({
      ping: { request: z.null(), response: z.object({ pong: z.boolean() }) },
      fail: { request: z.null(), response: z.null() },
    });
    const client = new RpcClient({
      nc,
      scope: { installation: 'inst', authority: 'auth-default' },
      commands,
    });
    expect(await client.call('m1', 'ping', null)).toEqual({ pong: true });
    await expect(client.call('m1', 'fail', null)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(client.call('m2', 'ping', null, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'RPC_NO_RESPONDERS',
    });

    // Stopped: nobody answers any more (no silent queueing).
    await agent.stop();
    await expect(nc.request(`${prefix}.ping`, '', { timeout: 500 })).rejects.toThrow();
    await nc.close();
  });

  it('refuses duplicate and malformed command names', () => {
    const agent = new AgentRpc('p');
    agent.register('ping', () => null);
    expect(() => agent.register('ping', () => null)).toThrow(/twice/);
    expect(() => agent.register('Bad.Name', () => null)).toThrow(/bad RPC command/);
  });

  it('escapes subject tokens and parses MemAvailable', () => {
    expect(escapeSubjectToken('a.b c')).toBe('a=2Eb=20c');
    expect(parseMemAvailable('MemTotal: 100 kB\nMemAvailable:   2048 kB\n')).toBe(2048 * 1024);
    expect(parseMemAvailable('nothing')).toBeNull();
  });
});
