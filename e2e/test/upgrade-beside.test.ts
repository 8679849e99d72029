/**
 * Upgrades that drop nothing (issue 20 item 5, docs/adr/0014-replace-beside.md): under load,
 * ployzd replaces ployz-gateway (a config change, then a new image) and ployz-dns (a config
 * change) beside the running container, and a replacement a killed ployzd left half-way is
 * finished at its next start — with no failed request or query.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { dnsLoop, httpLoop, type Loop, waitServing } from './beside-load.ts';
import { DaemonHarness, docker, type StatusJson } from './daemon-harness.ts';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

type Component = StatusJson['components'][number] & {
  image_id?: string | null;
  version?: string | null;
  skew?: string | null;
};

function component(s: StatusJson, c: string): Component {
  const found = s.components.find((x) => x.component === c);
  if (!found) throw new Error(`no ${c} in ${JSON.stringify(s)}`);
  return found as Component;
}

/** A copy of `image` that differs only by a label: a new image id, as a new version would be. */
async function relabel(image: string, version: string): Promise<string> {
  const tag = `ployz-e2e/gateway:${version}`;
  await new Promise<void>((resolve, reject) => {
    const p = spawn('docker', ['build', '-q', '-t', tag, '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
    p.stdin.end(`FROM ${image}\nLABEL org.opencontainers.image.version=${version}\n`);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`docker build exited ${code}`))));
  });
  return docker('image', 'inspect', '--format', '{{.Id}}', tag);
}

describe('replace-beside: gateway and dns upgrades under load (real dockerd)', () => {
  it('drops no request or query across gateway and dns recreates, and finishes a replacement a killed ployzd left half-way', async () => {
    await using h = await DaemonHarness.create();
    await h.startInitialised();
    const d = new DeployHarness(h);
    await d.engineReady();
    const r = await d.deploy(await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host })));
    expect(r.code, JSON.stringify(r.last)).toBe(0);
    const target = { host: '127.0.0.1', port: h.gatewayPort, hostHeader: d.host, expect: '(version v1)' };
    await waitServing(target);
    const dnsHost = `${h.subnet.split('.').slice(0, 3).join('.')}.2`;
    const loops: Record<string, Loop> = {
      keepAlive: httpLoop(target, true),
      perRequest: httpLoop(target, false),
      dns: dnsLoop(dnsHost, 53, 'nothing-here.ployz.internal'),
    };
    const mark = (m: string) => console.log(`${new Date().toISOString()} ${m}`);
    const restart = async (change: () => void | Promise<void>) => {
      mark('restart');
      await h.kill9();
      await change();
      await h.start();
      return h.settledStatus();
    };
    try {
      await new Promise((res) => setTimeout(res, 1000));
      const before = await h.containerIds();

      // 1. A gateway config change.
      h.componentEnv = { gateway: { PLOYZ_GATEWAY_LOG_LEVEL: 'debug' } };
      const s1 = await restart(() => {});
      expect(component(s1, 'gateway')).toMatchObject({ state: 'recreated', reason: 'config_drift' });
      expect(component(s1, 'gateway').detail).toMatch(/started beside the old container/);
      expect(component(s1, 'dns').state).toBe('adopted');

      // 2. A new gateway image (a new version label, so a new image id).
      const image = await relabel(h.images.gateway ?? '', `beside-${h.id}`);
      const s2 = await restart(() => {
        h.images.gateway = image;
      });
      const gw = component(s2, 'gateway');
      expect(gw).toMatchObject({ state: 'recreated', reason: 'config_drift', image_id: image, skew: null });
      expect(gw.version).toBe(`beside-${h.id}`);
      expect(await h.human('status')).toMatch(
        new RegExp(`gateway\\s+recreated\\s+config_drift.*beside-${h.id}`),
      );

      // 3. A dns config change.
      h.componentEnv = { ...h.componentEnv, dns: { PLOYZ_LOG_LEVEL: 'debug' } };
      const s3 = await restart(() => {});
      expect(component(s3, 'dns')).toMatchObject({ state: 'recreated', reason: 'config_drift' });
      expect(component(s3, 'dns').detail).toMatch(/started beside the old container/);

      // 4. ployzd killed while the new gateway runs beside the old one: the next start finishes it.
      await h.kill9();
      h.componentEnv = { ...h.componentEnv, gateway: { PLOYZ_GATEWAY_LOG_LEVEL: 'warn' } };
      await h.start();
      const next = `${h.prefix}gateway.next`;
      for (let i = 0; ; i++) {
        if ((await h.containerIds())[next] !== undefined) break;
        if (i > 300) throw new Error(`${next} never appeared: ${h.logs.join('')}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      await h.kill9();
      const ids = await h.containerIds();
      expect(ids[next]).toBeDefined();
      expect(ids[`${h.prefix}gateway`]).toBeDefined();
      await h.start();
      const s4 = await h.settledStatus();
      // Killed after `.next` started: it is finished (resumed); killed between create and start:
      // it is removed and the replacement done again, beside. Either way one gateway, no `.next`.
      expect(h.logs.join('')).toMatch(/replacement_(resumed|abandoned)/);
      expect(['adopted', 'recreated']).toContain(component(s4, 'gateway').state);
      const after = await h.containerIds();
      expect(after[next]).toBeUndefined();
      expect(after[`${h.prefix}gateway`]).toBeDefined();
      // Networking and nats never moved.
      for (const c of ['networking', 'nats'])
        expect(after[`${h.prefix}${c}`]).toBe(before[`${h.prefix}${c}`]);
      await new Promise((res) => setTimeout(res, 1000));
    } finally {
      for (const line of h.logs.join('').split('\n')) {
        if (/"component (recreated|created|failed)"|replacement|draining/.test(line))
          console.log(line.slice(0, 400));
      }
      await docker('rmi', '-f', `ployz-e2e/gateway:beside-${h.id}`).catch(() => '');
      const tallies = Object.fromEntries(
        await Promise.all(Object.entries(loops).map(async ([k, l]) => [k, await l.stop()] as const)),
      );
      console.log(
        JSON.stringify(
          Object.fromEntries(
            Object.entries(tallies).map(([k, t]) => [
              k,
              { ok: t.ok, failed: t.failed.length, retried: t.retried },
            ]),
          ),
        ),
      );
      for (const [k, t] of Object.entries(tallies)) {
        expect(t.ok, k).toBeGreaterThan(20);
        expect(t.failed, k).toEqual([]);
      }
    }
  }, 600_000);
});
