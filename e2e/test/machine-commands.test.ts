import { machineCommands } from '@ployz/protocol';
import { connectStore } from '@ployz/store';
import { describe, expect, it } from 'vitest';
import { DaemonHarness, docker, type StatusJson } from './daemon-harness.ts';

describe('machine commands of a running ployzd (real ployzd, dockerd, nats)', () => {
  it('answers ping, status and capacity for its machine; another machine has no responders', async () => {
    await using h = await DaemonHarness.create();
    await h.startInitialised();
    await h.waitFor((s) => s.agent?.listening === true, 'agent listening', 60_000);
    const connection = await connectStore({ ...(await h.asPloyzd()), timeoutMs: 5000 });
    try {
      const client = h.rpc(connection.nc, machineCommands, 10_000);
      const before = Date.now();
      const pong = await client.call('m1', 'ping', null);
      expect(pong).toMatchObject({ pong: true, machine: 'm1' });
      expect(Date.parse(pong.at)).toBeGreaterThanOrEqual(before - 60_000);

      // The status the command answers is the daemon's status, as `ployzctl status` shows it.
      const viaRpc = await client.call('m1', 'status', null);
      const local = await h.status();
      expect(viaRpc).toMatchObject({
        daemon: { pid: h.proc?.pid, state_dir: h.stateDir, socket: h.socket },
        initialised: true,
        machine: { machine_id: 'm1', subnet: h.subnet, overlay_ip: local?.machine?.overlay_ip },
        agent: { listening: true, commands: expect.arrayContaining(['ping', 'status', 'capacity']) },
      });
      expect(viaRpc.components.map((c) => c.component).sort()).toEqual(
        (local?.components ?? []).map((c) => c.component).sort(),
      );

      // Capacity is measured on this machine, on the disk that holds the state dir.
      const cap = await client.call('m1', 'capacity', null);
      expect(cap.disk_path).toBe(h.stateDir);
      expect(cap.cpus).toBeGreaterThan(0);
      expect(cap.memory_available_bytes).toBeGreaterThan(0);
      expect(cap.memory_total_bytes).toBeGreaterThanOrEqual(cap.memory_available_bytes);
      expect(cap.disk_total_bytes).toBeGreaterThanOrEqual(cap.disk_free_bytes);

      await expect(client.call('m2', 'ping', null)).rejects.toMatchObject({ code: 'RPC_NO_RESPONDERS' });
    } finally {
      await connection.close();
    }
  });

  it('status answers while NATS is frozen, naming what did not answer; clear again once it thaws', async () => {
    await using h = await DaemonHarness.create();
    await h.startInitialised();
    type Full = StatusJson & {
      nats: { rtt_ms: number | null } | null;
      store: { error: string | null } | null;
    };
    await h.waitFor((s) => (s as Full).store?.error === null, 'store status clear', 60_000);
    const nats = `${h.prefix}nats`;
    await docker('pause', nats);
    try {
      // The store's round trips and the NATS rtt hang on a frozen server (the TCP link stays up).
      const frozen = (await h.status()) as Full | null;
      expect(frozen, 'status answered').not.toBeNull();
      expect(frozen?.initialised).toBe(true);
      expect(frozen?.nats?.rtt_ms).toBeNull();
      expect(frozen?.store?.error).toMatch(/did not answer|no answer in 3 s/);
    } finally {
      await docker('unpause', nats);
    }
    const thawed = await h.waitFor(
      (s) => (s as Full).store?.error === null,
      'store status clear again',
      60_000,
    );
    expect((thawed as Full).nats?.rtt_ms).toBeGreaterThanOrEqual(0);
  });
});
