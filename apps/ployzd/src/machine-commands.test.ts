import { connect } from '@nats-io/transport-node';
import { RpcClient, RpcServer } from '@ployz/protocol';
import { startNats } from '@ployz/testkit';
import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { measureCapacity, parseMemAvailable } from './capacity.ts';
import { machineCommands } from './machine-commands.ts';

const scope = { installation: 'inst', authority: 'auth-default' };

describe('machine commands over @ployz/protocol RPC on a real nats-server', () => {
  it('answers ping and capacity on the machine subject; errors keep their code', async () => {
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    const server = new RpcServer({ nc, scope, machine: 'm1', commands: machineCommands }).handleAll({
      ping: () => ({ pong: true, machine: 'm1', at: new Date().toISOString() }),
      status: () => {
        throw new PloyzError('NOT_INITIALISED', 'this machine has no Ployz installation yet');
      },
      capacity: () => measureCapacity('/'),
    });
    expect(server.prefix).toBe('ployz.v1.inst.auth-default.rpc.node.m1');
    expect(server.commands()).toEqual(['capacity', 'ping', 'status']);
    server.start();
    await nc.flush();
    const client = new RpcClient({ nc, scope, commands: machineCommands, timeoutMs: 2000 });

    expect(await client.call('m1', 'ping', null)).toMatchObject({ pong: true, machine: 'm1' });
    const cap = await client.call('m1', 'capacity', null);
    expect(cap.cpus).toBeGreaterThan(0);
    expect(cap.memory_total_bytes).toBeGreaterThan(cap.memory_available_bytes);
    expect(cap.disk_free_bytes).toBeGreaterThan(0);
    await expect(client.call('m1', 'status', null)).rejects.toMatchObject({ code: 'NOT_INITIALISED' });
    await expect(client.call('m2', 'ping', null, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'RPC_NO_RESPONDERS',
    });

    // Stopped: nobody answers any more (no silent queueing).
    await server.stop();
    await expect(client.call('m1', 'ping', null, { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'RPC_NO_RESPONDERS',
    });
    await nc.close();
  });

  it('parses MemAvailable', () => {
    expect(parseMemAvailable('MemTotal: 100 kB\nMemAvailable:   2048 kB\n')).toBe(2048 * 1024);
    expect(parseMemAvailable('nothing')).toBeNull();
  });
});
