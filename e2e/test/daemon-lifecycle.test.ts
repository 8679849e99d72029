import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DaemonHarness, docker, type StatusJson } from './daemon-harness.ts';

const COMPONENTS = ['networking', 'nats', 'gateway', 'dns'];

async function running(name: string): Promise<{ id: string; running: boolean }> {
  const [id = '', state = ''] = (
    await docker('inspect', '--format', '{{.Id}} {{.State.Running}}', name)
  ).split(' ');
  return { id, running: state === 'true' };
}

describe('ployzd: adopt-first, disposable daemon (real dockerd)', () => {
  it('creates on first start, adopts everything on restart, never touches workloads, survives kill -9 and SIGTERM', async () => {
    await using h = await DaemonHarness.create();
    await h.start();

    const fresh = (await h.ctl('status')).json as StatusJson;
    expect(fresh.initialised).toBe(false);
    const notInit = await h.ctl('machine', 'ls');
    expect(notInit.code).toBe(2);
    expect(notInit.json).toMatchObject({ error: { code: 'NOT_INITIALISED' } });

    // First start: machine init creates every component.
    const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
    expect(init.code, init.stderr).toBe(0);
    const initJson = init.json as {
      machine: { subnet: string };
      components: { component: string; state: string }[];
    };
    expect(initJson.machine.subnet).toBe(h.subnet);
    expect(initJson.components.map((c) => [c.component, c.state])).toEqual(
      COMPONENTS.map((c) => [c, 'created']),
    );

    const first = await h.waitFor(
      (s) => s.nats?.state === 'connected' && s.machine?.record_stored === true,
      'nats + record',
    );
    expect(first.reconcile).toMatchObject({ created: 4, adopted: 0, recreated: 0, problems: 0 });
    expect(first.agent?.commands).toEqual(expect.arrayContaining(['ping', 'status', 'capacity']));
    const idsBefore = Object.fromEntries(first.components.map((c) => [c.component, c.container_id]));
    for (const c of COMPONENTS) expect(idsBefore[c]).toMatch(/^[0-9a-f]{64}$/);

    // Labels carry identity: hash on all, parent id on the children.
    const netId = idsBefore.networking ?? '';
    for (const c of COMPONENTS) {
      const labels = JSON.parse(
        await docker('inspect', '--format', '{{json .Config.Labels}}', `${h.prefix}${c}`),
      ) as Record<string, string>;
      expect(labels['ployz.managed']).toBe('true');
      expect(labels['ployz.kind']).toBe('system');
      expect(labels['ployz.config-hash']).toMatch(/^[0-9a-f]{64}$/);
      expect(labels['ployz.parent-container-id']).toBe(c === 'networking' ? undefined : netId);
    }
    // The networking container sits at .2 on the bridge and owns wg0.
    const ip = await docker(
      'inspect',
      '--format',
      `{{(index .NetworkSettings.Networks "${h.bridge}").IPAddress}}`,
      `${h.prefix}networking`,
    );
    expect(ip).toBe(h.subnet.replace(/0\/24$/, '2'));

    // The gateway and DNS healthchecks (their /_ployz/health on the bridge address) pass.
    const healthy = await h.waitFor(
      (s) =>
        s.components.every(
          (c) => c.state === 'created' && (c.component === 'nats' || c.health === 'healthy'),
        ),
      'healthchecks passing',
      90_000,
    );
    expect(healthy.components.map((c) => c.health)).toEqual(['healthy', 'none', 'healthy', 'healthy']);

    // wg0 carries the overlay address; NATS and DNS listen on it (reachable by mesh peers).
    const overlay = healthy.machine?.overlay_ip ?? '';
    expect(await docker('exec', `${h.prefix}networking`, 'ip', '-6', 'addr', 'show', 'dev', 'wg0')).toContain(
      overlay,
    );
    const listeners = await docker('exec', `${h.prefix}networking`, 'ss', '-lntuH');
    expect(listeners).toContain(`[${overlay}]:53`);
    expect(listeners).toMatch(/\*:4222|\[::\]:4222/);
    expect(listeners).toContain(`${h.subnet.replace(/0\/24$/, '2')}:53`);

    // A workload on the bridge: the daemon must never touch it.
    const workload = await docker(
      'run',
      '-d',
      '--name',
      `${h.prefix}web`,
      '--network',
      h.bridge,
      '--label',
      'ployz.managed=true',
      '--label',
      'ployz.kind=workload',
      '--label',
      `ployz.installation=${h.installation}`,
      '--label',
      `ployz.test=${h.installation}`,
      'ployz/hello:latest',
    );

    // kill -9: the data plane keeps running, untouched.
    await h.kill9();
    for (const c of COMPONENTS)
      expect(await running(`${h.prefix}${c}`)).toEqual({ id: idsBefore[c], running: true });

    // Second start adopts all: 0 recreated, the same ids.
    await h.start();
    const second = await h.settledStatus();
    expect(second.reconcile).toMatchObject({ adopted: 4, created: 0, recreated: 0, problems: 0 });
    expect(second.components.map((c) => [c.component, c.state, c.container_id])).toEqual(
      COMPONENTS.map((c) => [c, 'adopted', idsBefore[c]]),
    );

    // init on an initialised machine says so and changes nothing.
    const identityBefore = await readFile(join(h.stateDir, 'machine.json'), 'utf8');
    const again = await h.ctl('machine', 'init', '--id', 'other');
    expect(again.code).toBe(2);
    expect(again.json).toMatchObject({ error: { code: 'ALREADY_INITIALISED' } });
    expect(await readFile(join(h.stateDir, 'machine.json'), 'utf8')).toBe(identityBefore);
    const ls = await h.waitFor((s) => s.nats?.state === 'connected', 'nats after restart');
    expect(ls.machine?.machine_id).toBe('m1');
    const machines = await h.ctl('machine', 'ls');
    expect(machines.json).toMatchObject({ machines: [{ id: 'm1', subnet: h.subnet, lifecycle: 'active' }] });
    const show = await h.ctl('machine', 'show');
    expect(show.json).toMatchObject({ machine: { machine_id: 'm1' }, record: { id: 'm1' } });

    // SIGTERM stops only the ephemeral parts.
    expect(await h.term()).toBe(0);
    const down = await h.ctl('status');
    expect(down.json).toMatchObject({ error: { code: 'DAEMON_UNREACHABLE' } });
    for (const c of COMPONENTS)
      expect(await running(`${h.prefix}${c}`)).toEqual({ id: idsBefore[c], running: true });
    expect((await running(`${h.prefix}web`)).id).toBe(workload);
    expect((await running(`${h.prefix}web`)).running).toBe(true);
  });
});
