import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DaemonHarness, docker, type StatusJson } from './daemon-harness.ts';

const COMPONENTS = ['networking', 'nats', 'gateway', 'dns'];

function byComponent(s: StatusJson) {
  return Object.fromEntries(s.components.map((c) => [c.component, c]));
}

describe('ployzd: drift and collisions (real dockerd)', () => {
  it('recreates only the drifted component, and the networking container together with its children', async () => {
    await using h = await DaemonHarness.create();
    const first = byComponent(await h.startInitialised());

    // Change the gateway's configuration only.
    await h.kill9();
    h.componentEnv = { gateway: { PLOYZ_GATEWAY_LOG_LEVEL: 'debug' } };
    await h.start();
    const afterGateway = await h.settledStatus();
    expect(afterGateway.reconcile).toMatchObject({ adopted: 3, recreated: 1, created: 0, problems: 0 });
    const g = byComponent(afterGateway);
    expect(g.gateway).toMatchObject({ state: 'recreated', reason: 'config_drift' });
    expect(g.gateway?.detail).toMatch(/config hash/);
    expect(g.gateway?.container_id).not.toBe(first.gateway?.container_id);
    expect(await h.fullId(`${h.prefix}gateway`)).toBe(g.gateway?.container_id);
    expect(first.gateway?.container_id && (await h.fullId(first.gateway.container_id))).toBeNull();
    for (const c of ['networking', 'nats', 'dns']) {
      expect(g[c]).toMatchObject({ state: 'adopted', container_id: first[c]?.container_id });
    }
    // The human status says why.
    const human = await h.human('status');
    expect(human).toMatch(/gateway\s+recreated\s+config_drift/);
    expect(human).toMatch(/networking\s+adopted/);

    // Change the networking container's configuration: it and its children are recreated.
    await h.kill9();
    h.componentEnv = { gateway: { PLOYZ_GATEWAY_LOG_LEVEL: 'debug' }, networking: { PLOYZ_WG_MTU: '1380' } };
    await h.start();
    const afterNet = await h.settledStatus();
    expect(afterNet.reconcile).toMatchObject({ adopted: 0, recreated: 4, created: 0, problems: 0 });
    const n = byComponent(afterNet);
    expect(n.networking).toMatchObject({ state: 'recreated', reason: 'config_drift' });
    for (const c of ['nats', 'gateway', 'dns'])
      expect(n[c]).toMatchObject({ state: 'recreated', reason: 'parent_changed' });
    const netId = n.networking?.container_id;
    for (const c of ['nats', 'gateway', 'dns']) {
      const parent = await docker(
        'inspect',
        '--format',
        '{{index .Config.Labels "ployz.parent-container-id"}}',
        `${h.prefix}${c}`,
      );
      expect(parent).toBe(netId);
      expect(await docker('inspect', '--format', '{{.HostConfig.NetworkMode}}', `${h.prefix}${c}`)).toBe(
        `container:${netId}`,
      );
    }
    // NATS came back in the new namespace, with its data on the host path.
    await h.waitFor((s) => s.nats?.state === 'connected', 'nats reconnect after networking recreate');
    const machines = await h.ctl('machine', 'ls');
    expect(machines.json).toMatchObject({ machines: [{ id: 'm1' }] });

    // A third start with the same config adopts everything.
    await h.kill9();
    await h.start();
    const third = await h.settledStatus();
    expect(third.components.map((c) => [c.component, c.state, c.container_id])).toEqual(
      COMPONENTS.map((c) => [c, 'adopted', n[c]?.container_id]),
    );
  });

  it('with live repair off, status shows a stopped component as unhealthy and a removed one as missing; the next start repairs both', async () => {
    await using h = await DaemonHarness.create();
    h.extraArgs = ['--repair-interval-ms', '0'];
    const first = byComponent(await h.startInitialised());

    await docker('stop', '-t', '1', `${h.prefix}dns`);
    await docker('rm', '-f', `${h.prefix}gateway`);
    const broken = byComponent(
      await h.waitFor((s) => byComponent(s).dns?.state === 'unhealthy', 'dns unhealthy'),
    );
    expect(broken.dns).toMatchObject({ state: 'unhealthy', reason: 'not_running', running: false });
    expect(broken.gateway).toMatchObject({ state: 'missing', reason: 'missing' });
    expect(broken.gateway?.detail).toMatch(/live repair is off.*restart ployzd/);
    expect(broken.networking?.state).toBe('created');
    // Off means off: nothing comes back while this daemon runs.
    await new Promise((r) => setTimeout(r, 1500));
    expect(byComponent((await h.status()) as StatusJson).gateway?.state).toBe('missing');

    await h.kill9();
    await h.start();
    const repaired = byComponent(await h.settledStatus());
    expect(repaired.dns).toMatchObject({ state: 'recreated', reason: 'not_running' });
    expect(repaired.gateway).toMatchObject({ state: 'created', reason: 'missing' });
    expect(repaired.networking).toMatchObject({
      state: 'adopted',
      container_id: first.networking?.container_id,
    });
    expect(repaired.nats).toMatchObject({ state: 'adopted', container_id: first.nats?.container_id });
  });

  it('repairs a removed or stopped component while it runs, without touching the others', async () => {
    await using h = await DaemonHarness.create();
    h.extraArgs = ['--repair-interval-ms', '500'];
    const first = byComponent(await h.startInitialised());

    await docker('rm', '-f', `${h.prefix}gateway`);
    const afterRemove = byComponent(
      await h.waitFor(
        (s) => byComponent(s).gateway?.state === 'created' && byComponent(s).gateway?.running === true,
        'gateway recreated by the live repair',
      ),
    );
    expect(afterRemove.gateway).toMatchObject({ reason: 'missing' });
    expect(afterRemove.gateway?.container_id).not.toBe(first.gateway?.container_id);
    expect(await h.fullId(`${h.prefix}gateway`)).toBe(afterRemove.gateway?.container_id);
    // The others are left alone: same containers, adopted by the repair pass (a health check may
    // still flip one to unhealthy on a loaded machine; that is not a recreate).
    for (const c of ['networking', 'nats', 'dns']) {
      expect(afterRemove[c]?.container_id).toBe(first[c]?.container_id);
      expect(['adopted', 'unhealthy']).toContain(afterRemove[c]?.state);
    }

    // Stopped (not removed): Docker's restart policy does not restart a stopped container, so the
    // repair does, after seeing it stopped twice.
    await docker('stop', '-t', '1', `${h.prefix}dns`);
    const afterStop = byComponent(
      await h.waitFor(
        (s) => byComponent(s).dns?.state === 'recreated' && byComponent(s).dns?.running === true,
        'dns recreated by the live repair',
      ),
    );
    expect(afterStop.dns).toMatchObject({ reason: 'not_running' });
    expect(afterStop.networking?.container_id).toBe(first.networking?.container_id);
    expect(afterStop.nats?.container_id).toBe(first.nats?.container_id);
    expect(h.logs.join('')).toMatch(/data plane repaired/);
  });

  it('retries while the Docker engine does not answer, then brings the data plane up', async () => {
    await using h = await DaemonHarness.create();
    const link = join(h.dir, 'docker.sock');
    h.extraArgs = ['--docker-socket', link];
    // Identity first (no engine needed), then restart against an engine that is "down".
    await h.start();
    const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
    expect(init.code).toBe(1);
    expect(init.json).toMatchObject({ reconcile: { error: { code: 'DOCKER_UNAVAILABLE' } } });
    await h.kill9();
    await h.start();
    const down = await h.waitFor((s) => s.reconcile?.error != null, 'reconcile error');
    expect(down.reconcile?.error).toMatchObject({ code: 'DOCKER_UNAVAILABLE' });
    await symlink('/var/run/docker.sock', link);
    const up = await h.waitFor(
      (s) => s.reconcile?.error === null && s.reconcile.created === 4,
      'retry succeeded',
      60_000,
    );
    expect(up.components.map((c) => c.state)).toEqual(['created', 'created', 'created', 'created']);
  });

  it('reports a foreign container holding a component name and never removes it', async () => {
    await using h = await DaemonHarness.create();
    const foreign = await docker(
      'run',
      '-d',
      '--name',
      `${h.prefix}dns`,
      '--label',
      `ployz.test=${h.installation}`,
      'ployz/hello:latest',
    );
    await h.start();
    const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
    expect(init.code).toBe(0);
    const s = byComponent(await h.settledStatus());
    expect(s.dns).toMatchObject({ state: 'collision', reason: 'name_collision', container_id: null });
    expect(s.dns?.detail).toContain(`${h.prefix}dns`);
    expect(s.dns?.detail).toMatch(/no Ployz labels/);
    for (const c of ['networking', 'nats', 'gateway']) expect(s[c]?.state).toBe('created');

    // Restart: still reported, still not touched.
    await h.kill9();
    await h.start();
    const again = byComponent(await h.settledStatus());
    expect(again.dns?.state).toBe('collision');
    expect(await docker('inspect', '--format', '{{.Id}} {{.State.Running}}', `${h.prefix}dns`)).toBe(
      `${foreign} true`,
    );
    const human = await h.human('status');
    expect(human).toMatch(/dns\s+collision\s+name_collision/);
    expect(human).toContain(`${h.prefix}dns`);
  });
});
