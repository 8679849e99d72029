/**
 * The machine-command registry against what this daemon really produces: the daemon's own
 * handlers (`Daemon.machineCommandHandlers()`, the ones it registers) served through a real
 * nats-server; their answers pass the registry's schemas and reach a caller unchanged. A running
 * ployzd answers them too in e2e/test/machine-commands.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { RpcClient, RpcServer } from '@ployz/protocol';
import { startNats } from '@ployz/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { measureCapacity, parseMemAvailable } from '../machine/capacity.ts';
import { connectDocker, DockerEngine } from '../runtime/docker.ts';
import { parseDaemonConfig } from './config.ts';
import { Daemon } from './daemon.ts';
import { machineCommands } from './machine-commands.ts';

const scope = { installation: 'inst', authority: 'auth-default' };

describe('machine commands: the daemon’s views through the registry on a real nats-server', () => {
  it('a real daemon’s status and capacity pass the schemas and arrive as produced', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-mc-'));
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), pino({ level: 'silent' }), []);
    await daemon.start();
    await using nats = await startNats();
    const nc = await connect({ servers: nats.url });
    const server = new RpcServer({ nc, scope, machine: 'm1', commands: machineCommands }).handleAll(
      daemon.machineCommandHandlers(),
    );
    try {
      expect(server.prefix).toBe('ployz.v1.inst.auth-default.rpc.node.m1');
      // The schemas accept what the daemon produces (a drifted view fails here, not on a peer).
      const view: unknown = JSON.parse(JSON.stringify(await daemon.status()));
      expect(machineCommands.status.response.safeParse(view).error).toBeUndefined();
      const measured = await measureCapacity(config.stateDir);
      expect(machineCommands.capacity.response.safeParse(measured).error).toBeUndefined();

      server.start();
      await nc.flush();
      const client = new RpcClient({ nc, scope, commands: machineCommands, timeoutMs: 5000 });
      const status = await client.call('m1', 'status', null);
      expect(status).toMatchObject({
        daemon: { pid: process.pid, state_dir: config.stateDir, socket: config.socketPath },
        initialised: false,
        machine: null,
      });
      // Not initialised: the daemon's ping names no machine yet.
      const pong = await client.call('m1', 'ping', null);
      expect(pong).toMatchObject({ pong: true });
      expect(pong.machine).toBeUndefined();
      expect(Date.parse(pong.at)).not.toBeNaN();
      const cap = await client.call('m1', 'capacity', null);
      expect(cap).toMatchObject({ disk_path: config.stateDir, cpus: measured.cpus });
      expect(cap.memory_total_bytes).toBeGreaterThanOrEqual(cap.memory_available_bytes);
      expect(cap.disk_total_bytes).toBeGreaterThanOrEqual(cap.disk_free_bytes);
    } finally {
      await server.stop();
      await nc.close();
      await daemon.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('parses MemAvailable', () => {
    expect(parseMemAvailable('MemTotal: 100 kB\nMemAvailable:   2048 kB\n')).toBe(2048 * 1024);
    expect(parseMemAvailable('nothing')).toBeNull();
  });
});
