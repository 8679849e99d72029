/**
 * The store cluster member ployz-nats-store under the supervisor (issue 19, ADR 0020), on one real
 * ployzd + dockerd: `store_member_start` (the machine command a promotion's coordinator calls, over
 * the real NATS as ployzd) creates it in the networking netns with its own data directory and its
 * settings beside ployz-nats's; status lists it; a second start adopts it; a recreated
 * ployz-networking recreates the member too (its old netns went with the old container); a removed
 * member container is repaired; `store_member_remove` removes container, record and data, and the
 * supervisor no longer wants it. The other two members are addresses nobody answers on: the member
 * runs (routes retry), it simply has no metadata leader.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { machineCommands, storeMemberCommands } from '@ployz/protocol';
import { connectStore } from '@ployz/store';
import { describe, expect, it } from 'vitest';
import { DaemonHarness, docker } from './daemon-harness.ts';

async function inspect(
  name: string,
): Promise<{ id: string; network: string; running: boolean; binds: string[] } | null> {
  const out = await docker('inspect', '--format', '{{json .}}', name).catch(() => null);
  if (out === null) return null;
  const c = JSON.parse(out) as {
    Id: string;
    State: { Running: boolean };
    HostConfig: { NetworkMode: string; Binds: string[] };
  };
  return { id: c.Id, network: c.HostConfig.NetworkMode, running: c.State.Running, binds: c.HostConfig.Binds };
}

async function until<T>(what: string, ms: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe('store cluster member under the supervisor (real ployzd, dockerd, nats)', () => {
  it('start creates it in the networking netns, networking recreated → member recreated, remove cleans up', async () => {
    await using h = await DaemonHarness.create();
    h.extraArgs.push('--repair-interval-ms', '1000');
    await h.startInitialised();
    const s0 = await h.waitFor((s) => s.agent?.listening === true, 'agent listening', 60_000);
    const overlay = s0.machine?.overlay_ip;
    expect(overlay).toBeTruthy();
    const ployzd = await h.asPloyzd();
    const connection = await connectStore({ ...ployzd, timeoutMs: 5000 });
    const member = `${h.prefix}nats-store`;
    const networking = `${h.prefix}networking`;
    try {
      const rpc = h.rpc(connection.nc, storeMemberCommands, 60_000);
      const members = [
        { machine_id: 'm1', overlay_ip: overlay as string },
        { machine_id: 'm2', overlay_ip: 'fd70:6c6f:797a:ffff::2' },
        { machine_id: 'm3', overlay_ip: 'fd70:6c6f:797a:ffff::3' },
      ];
      // Not a member itself: refused before anything is written.
      await expect(
        rpc.call('m1', 'store_member_start', {
          members: members.map((m, i) => (i === 0 ? { ...m, machine_id: 'mx' } : m)),
          run: null,
        }),
      ).rejects.toMatchObject({ code: 'STORE_PROMOTE_MACHINES_INVALID' });
      expect(await inspect(member)).toBeNull();

      const started = await rpc.call('m1', 'store_member_start', { members, run: 'r1' });
      expect(started).toMatchObject({ machine: 'm1', container_name: member, running: true });
      const first = await inspect(member);
      const net1 = await inspect(networking);
      expect(first?.running).toBe(true);
      expect(first?.network).toBe(`container:${net1?.id}`);
      expect(first?.binds).toContain(`${join(h.stateDir, 'nats-store', 'data')}:/data`);
      const conf = await readFile(join(h.stateDir, 'nats-conf', 'nats-store.conf'), 'utf8');
      expect(conf).toContain('server_name: "m1-store"');
      expect(conf).toContain('include "auth.conf"');
      // The member answers on its own client port with ployzd's NKey (the auth file is ployz-nats's).
      const direct = await until('the member accepts ployzd', 30_000, async () =>
        connectStore({
          servers: `nats://${h.subnet.replace(/0\/24$/, '2')}:4223`,
          nkeySeed: ployzd.nkeySeed,
          timeoutMs: 2000,
        }).catch(() => null),
      );
      await direct.nc.close();
      const listed = await h.waitFor(
        (s) => s.components.some((c) => c.component === 'nats-store' && c.running),
        'status lists the member',
      );
      expect(listed.components.map((c) => c.component)).toContain('nats-store');

      // Idempotent: the same start adopts the running container.
      const again = await rpc.call('m1', 'store_member_start', { members, run: 'r1' });
      expect(again.container_id).toBe(first?.id);
      expect(again.state).toBe('adopted');

      // ployz-networking recreated: the member lost its netns and is recreated on the new one.
      await docker('rm', '-f', networking);
      const moved = await until('member on the new networking netns', 90_000, async () => {
        const n = await inspect(networking);
        const m = await inspect(member);
        return n?.running && m?.running && m.network === `container:${n.id}` && m.id !== first?.id ? m : null;
      });
      expect(moved.id).not.toBe(first?.id);

      // A removed member container is repaired like any component.
      await docker('rm', '-f', member);
      await until('member repaired', 60_000, async () => ((await inspect(member))?.running ? true : null));

      // ployz-nats was recreated with networking: both ends reconnect, and a request sent before
      // ployzd's subscription is back on the new server is lost. Call once ployzd answers again.
      const ping = h.rpc(connection.nc, machineCommands, 2000);
      await until('ployzd answers over the new ployz-nats', 60_000, () =>
        ping.call('m1', 'ping', null).catch(() => null),
      );
      const removed = await rpc.call('m1', 'store_member_remove', null);
      expect(removed).toEqual({ machine: 'm1', removed: true });
      expect(await inspect(member)).toBeNull();
      await expect(stat(join(h.stateDir, 'nats-store', 'data'))).rejects.toMatchObject({ code: 'ENOENT' });
      // Not wanted any more: the repair loop leaves it gone, status no longer lists it.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await inspect(member)).toBeNull();
      const after = await h.status();
      expect(after?.components.map((c) => c.component)).not.toContain('nats-store');
      expect(await rpc.call('m1', 'store_member_remove', null)).toEqual({ machine: 'm1', removed: false });
    } finally {
      await connection.nc.close();
      for (const line of h.logs.join('').split('\n')) {
        if (process.env.E2E_DEBUG || /nats-store|store member|"level":[45]0/.test(line))
          console.log(line.slice(0, 400));
      }
    }
  }, 300_000);
});
