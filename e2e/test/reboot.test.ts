/**
 * Issue 14, a simulated reboot on a dockerd the test owns (in a netns host): under a load loop
 * that checks every response body, every Ployz process (the supervisor and ployzd, by PID) is
 * killed and dockerd stopped; dockerd starts again on the same data root and ployzd is started
 * as a boot would (ployzd-supervise.sh, the same command) → the data plane, every workload at
 * its old address and every route come back; 0 responses from a wrong service at any time,
 * failures only inside the window.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RestartRig, TENANTS, tally } from './restart-harness.ts';

let rig: RestartRig;

beforeAll(async () => {
  rig = await RestartRig.create('reboot');
}, 300_000);

afterAll(async () => {
  await rig?.[Symbol.asyncDispose]();
}, 120_000);

/** Gone, or a zombie nobody has reaped yet: either way it runs no more. */
async function gone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  return stat === null || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/** Workload container name → its address on the Ployz bridge. */
async function workloadAddresses(): Promise<Map<string, string>> {
  const list = await rig.dockerd.docker.listContainers({
    all: true,
    filters: { label: [`ployz.installation=${rig.h.installation}`, 'ployz.kind=workload'] },
  });
  const addresses = new Map<string, string>();
  for (const c of list) {
    const info = await rig.dockerd.docker.getContainer(c.Id).inspect();
    const ip = Object.values(info.NetworkSettings.Networks)[0]?.IPAddress ?? '';
    addresses.set(info.Name, ip);
  }
  return addresses;
}

describe('a simulated reboot under load (engine owned by the test)', () => {
  it('data plane, workloads at their addresses and routes come back; never a wrong service, failures only in the window', async () => {
    const addressesBefore = await workloadAddresses();
    expect(addressesBefore.size).toBe(TENANTS.length);
    const before = await rig.daemonView();
    const supervisor = rig.supervisor;
    if (before === null || supervisor?.pid === undefined) throw new Error('no ployzd running');
    const load = rig.loadLoop(TENANTS);
    await new Promise((r) => setTimeout(r, 1500));

    const from = performance.now();
    // The machine goes down: the supervisor first (so it cannot start ployzd again), then ployzd.
    process.kill(supervisor.pid, 'SIGKILL');
    process.kill(before.pid, 'SIGKILL');
    while (!(await gone(supervisor.pid)) || !(await gone(before.pid)))
      await new Promise((r) => setTimeout(r, 50)); // the test timeout is the hang guard
    await rig.dockerd.stop();
    // The machine boots: the engine on its data root, then ployzd the way up.sh left it.
    await rig.dockerd.start();
    await rig.startPloyzd();
    await rig.allServeOwn(120_000);
    const until = performance.now();
    rig.log(`reboot window ${((until - from) / 1000).toFixed(1)} s`);
    await new Promise((r) => setTimeout(r, 2000));
    await load.stop();

    const { wrong, failed, outside, own, lengths } = tally(load.samples, [{ from, until }]);
    rig.log(
      `requests ${load.samples.length}, failed ${failed.length} (outside the window ${outside.length}), wrong ${wrong.length}, window ${lengths} s`,
    );
    expect(wrong).toEqual([]);
    expect(outside).toEqual([]);
    expect(own.filter((s) => s.at > until).length).toBeGreaterThan(0);
    expect(await workloadAddresses()).toEqual(addressesBefore);
    const after = await rig.daemonView();
    expect(after?.pid).not.toBe(before.pid);
    expect(after?.supervisor).toBe('supervisor');
    // The data plane: every component's container runs again (the test timeout is the hang guard).
    for (;;) {
      const s = await rig.h.status();
      if (s !== null && s.components.length > 0 && s.components.every((c) => c.running)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }, 300_000);
});
