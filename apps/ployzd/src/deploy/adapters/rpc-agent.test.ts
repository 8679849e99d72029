/**
 * The coordinator's side of a long participant call, on a real nats-server: while a readiness
 * wait runs, the participant is pinged; a participant that goes silent ends the wait with
 * MACHINE_UNREACHABLE naming it, long before the readiness budget; one that keeps answering its
 * pings is waited for.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { deployCommands, machineCommands, RpcServer } from '@ployz/protocol';
import { type NatsServer, startNats } from '@ployz/testkit';
import { PloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RpcMachineAgent } from './rpc-agent.ts';

const scope = { installation: 'watch', authority: 'local' };
let nats: NatsServer;
let nc: NatsConnection;
/** The participant: answers pings unless silent; answers `deploy_ready` after `readyAfterMs`. */
const participant = { silent: false, readyAfterMs: 0 };
const never = new Promise<never>(() => {});

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  const server = new RpcServer({
    nc,
    scope,
    machine: 'm2',
    commands: { ...machineCommands, ...deployCommands },
  });
  server.handle('ping', async () => {
    if (participant.silent) await never;
    return { pong: true, machine: 'm2', at: new Date().toISOString() };
  });
  server.handle('deploy_ready', async () => {
    await new Promise((r) => setTimeout(r, participant.readyAfterMs));
    if (participant.silent) await never;
    return { ready: true };
  });
  server.start();
});
afterAll(async () => {
  await nc?.close();
  await nats?.[Symbol.asyncDispose]();
});

const instance = { container_id: 'c0ffee0c0ffee0c0', ip: '10.210.2.5', name: 'p-web-0' };
/** No readiness: a 10 s budget, so without the watch a silent participant is an RPC_TIMEOUT at 10 s. */
const readiness = null;

/** An agent that pings every 200 ms and gives up after two misses. */
function fastWatch(): RpcMachineAgent {
  return new RpcMachineAgent(nc, scope.installation, scope.authority, { intervalMs: 200, misses: 2 });
}

describe('RpcMachineAgent: a participant lost during a long call', () => {
  it('a participant that answers its pings is waited for past several ping intervals', async () => {
    participant.silent = false;
    participant.readyAfterMs = 1200;
    const agent = fastWatch();
    await expect(
      agent.waitReady('m2', instance, readiness, new AbortController().signal),
    ).resolves.toBeUndefined();
  });

  it('a participant that goes silent ends the wait with MACHINE_UNREACHABLE naming it', async () => {
    participant.silent = false;
    participant.readyAfterMs = 30_000;
    const agent = fastWatch();
    const started = Date.now();
    const waiting = agent.waitReady('m2', instance, readiness, new AbortController().signal);
    await new Promise((r) => setTimeout(r, 500));
    participant.silent = true;
    const error = await waiting.then(
      () => null,
      (e: unknown) => e,
    );
    participant.silent = false;
    expect(error).toBeInstanceOf(PloyzError);
    expect((error as PloyzError).code).toBe('MACHINE_UNREACHABLE');
    expect((error as PloyzError).message).toMatch(
      /machine m2 stopped answering during the readiness wait of p-web-0/,
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it("the deploy's own abort still ends the wait with its reason", async () => {
    participant.readyAfterMs = 30_000;
    const agent = fastWatch();
    const abort = new AbortController();
    const waiting = agent.waitReady('m2', instance, readiness, abort.signal);
    abort.abort(new Error('deploy cancelled'));
    await expect(waiting).rejects.toThrow('deploy cancelled');
  });
});
