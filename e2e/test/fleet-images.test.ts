/**
 * Issue 18 item 6 on two netns machines (real dockerd each, wireguard-go, nats-server, ployzd):
 * m2's engine lacks `ployz/hello:latest`, and there is no registry anywhere.
 * - the preview on m1 names m2 as lacking it (by m1's image id), in JSON and in its text;
 * - a deploy of replicas = 2 sends it from m1 to m2 at the probe step (progress in the deploy's
 *   events), succeeds with one instance per machine, and m1's gateway reaches both;
 * - m2 then holds m1's image id, and `image push` to it is a no-op that says so;
 * - `image push` of an image m1 lacks is IMAGE_MISSING;
 * - automatic HTTPS on both machines (issue 21, ADR 0015): m1 alone orders from a real Pebble
 *   (on the host end of m1's veth; m2 runs with `--acme-directory off`, so no renewer), and
 *   Pebble's HTTP-01 validation goes to m2's gateway only (its DNS answers m2's address, its
 *   HTTP-01 port is m2's gateway port): the token m1 put in NATS KV is answered by m2. Then both
 *   gateways serve the same Pebble-issued certificate by SNI.
 * Needs root and the images (bash scripts/images.sh).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DeployPlanView, ImagePushResult } from '@ployz/protocol';
import { type Pebble, requestOn, startPebble, tlsHandshake } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helloManifest } from './deploy-harness.ts';
import {
  bootFleet,
  errorCode,
  type Fleet,
  fleetLogs,
  type Machine,
  machinesAnswering,
  until,
} from './fleet-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('fleet-images.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('fleet-images.test.ts SKIPPED: not root');

const IMAGE = 'ployz/hello:latest';
const HOST = 'images.localhost';

async function imageId(m: Machine, ref: string): Promise<string | null> {
  try {
    return (await m.dockerd.docker.getImage(ref).inspect()).Id;
  } catch {
    return null;
  }
}

describe.skipIf(!isRoot)('images without a registry on a two-machine fleet', () => {
  let fleet: Fleet;
  let m1: Machine;
  let m2: Machine;
  let file: string;
  let m1Id: string;
  let pebble: Pebble | undefined;
  const logs = () => fleetLogs(fleet.machines);

  beforeAll(async () => {
    fleet = await bootFleet('images', ['m1', 'm2'], {
      beforePloyzd: async ([a, b]) => {
        if (a === undefined || b === undefined) throw new Error('two machines');
        pebble = await startPebble({
          listenAddress: a.host.hostAddress,
          httpPort: b.h.gatewayPort,
          resolveTo: b.host.address,
          validitySeconds: 3600,
        });
        a.h.extraArgs = [
          ...['--acme-directory', pebble.directoryUrl, '--acme-ca-file', pebble.listenerCaFile],
          ...['--acme-interval-ms', '500', '--acme-request-retries', '1'],
        ];
      },
    });
    [m1, m2] = fleet.machines as [Machine, Machine];
    // m2's engine lacks the workload image (startMachine loads it everywhere).
    await m2.dockerd.docker.getImage(IMAGE).remove();
    expect(await imageId(m2, IMAGE)).toBeNull();
    m1Id = (await imageId(m1, IMAGE)) ?? '';
    expect(m1Id).toMatch(/^sha256:/);
    file = join(m1.h.dir, 'images.toml');
    await writeFile(
      file,
      helloManifest({ version: 'v1', host: HOST, namespace: 'images' }).replace(
        'name = "hello"\n',
        'name = "hello"\nplacement = { replicas = 2 }\n',
      ),
    );
  }, 300_000);
  afterAll(async () => {
    await fleet?.destroy();
    await pebble?.[Symbol.asyncDispose]();
  }, 120_000);

  it('the preview names m2 as lacking the image, by m1’s id', async () => {
    const preview = await m1.h.ctl('deploy', 'preview', '-f', file);
    expect(preview.code, `${preview.stdout}${preview.stderr}\n${logs()}`).toBe(3);
    const plan = preview.json as DeployPlanView;
    const byMachine = new Map(plan.images.map((i) => [i.machine, i]));
    expect(byMachine.get('m1')).toMatchObject({ image: IMAGE, action: 'present', image_id: m1Id });
    expect(byMachine.get('m2')).toMatchObject({ image: IMAGE, action: 'send', image_id: m1Id });
    const text = await m1.h.run(['deploy', 'preview', '-f', file]);
    expect(text.code).toBe(3);
    expect(text.stdout).toContain('Images:');
    expect(text.stdout).toMatch(/ployz\/hello:latest on m2: lacks it \([0-9a-f]{12}, [\d.]+ MB\)/);
    expect(text.stdout).not.toMatch(/on m1: lacks it/);
  }, 60_000);

  it('a deploy of replicas = 2 sends it to m2 and succeeds with one instance per machine, both behind the gateway', async () => {
    const started = Date.now();
    const deployed = await m1.h.ctl('deploy', '-f', file);
    const seconds = (Date.now() - started) / 1000;
    expect(deployed.code, `${deployed.stdout}${deployed.stderr}\n${logs()}`).toBe(0);
    const events = deployed.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const images = events.filter((e) => e.type === 'image');
    expect(images.map((e) => `${e.machine} ${e.action}`)).toContain('m2 sending');
    const loaded = images.find((e) => e.action === 'loaded');
    expect(loaded, JSON.stringify(images)).toMatchObject({ machine: 'm2', image: IMAGE, image_id: m1Id });
    // The measurement the ADR quotes: the tar's bytes over wg0, save → load, and the whole deploy.
    console.log(`fleet-images: ${loaded?.detail}; deploy ${seconds.toFixed(1)} s`);
    // Sent before anything of the deploy was written: the transfer's events come before step 4.
    const at = (p: (e: Record<string, unknown>) => boolean) => events.findIndex(p);
    expect(at((e) => e.type === 'image' && e.action === 'loaded')).toBeLessThan(
      at((e) => e.type === 'step' && e.step === 4),
    );
    // m2 holds m1's image, under its name.
    expect(await imageId(m2, IMAGE)).toBe(m1Id);
    const hostnames = new Map<string, string>();
    for (const m of [m1, m2]) {
      const running = await m.dockerd.docker.listContainers({
        filters: { label: ['ployz.namespace=images'], status: ['running'] },
      });
      expect(running.length, `${m.name}: ${JSON.stringify(running.map((c) => c.Names))}`).toBe(1);
      const info = await m.dockerd.docker.getContainer(running[0]?.Id ?? '').inspect();
      hostnames.set(info.Config.Hostname, m.name);
    }
    expect(await machinesAnswering(m1, HOST, hostnames, 2), `m1's gateway\n${logs()}`).toEqual(['m1', 'm2']);
  }, 150_000);

  it('image push to a machine that holds it is a no-op that says so', async () => {
    const pushed = await m1.h.ctl('image', 'push', IMAGE, '--machine', 'm2');
    expect(pushed.code, `${pushed.stdout}${pushed.stderr}\n${logs()}`).toBe(0);
    const result = pushed.json as ImagePushResult;
    expect(result).toMatchObject({ image: IMAGE, image_id: m1Id, from: 'm1' });
    expect(result.machines).toEqual([
      expect.objectContaining({ machine: 'm2', action: 'present', bytes: 0 }),
    ]);
    const text = await m1.h.run(['image', 'push', IMAGE]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/m2\s+already there, nothing sent/);
  }, 60_000);

  it('image push of an image the asked machine lacks is IMAGE_MISSING', async () => {
    const pushed = await m1.h.ctl('image', 'push', 'ployz/not-built:none', '--machine', 'm2');
    expect(pushed.code).toBe(2);
    expect(errorCode(pushed)).toBe('IMAGE_MISSING');
  }, 60_000);

  it('a tls = "auto" route: m1 orders, m2’s gateway answers the challenge, both serve the Pebble certificate by SNI', async () => {
    if (pebble === undefined) throw new Error('no pebble');
    const host = `shop-${m1.h.id}.test`;
    const tlsFile = join(m1.h.dir, 'tls.toml');
    await writeFile(
      tlsFile,
      helloManifest({ version: 'fleet-tls', host, namespace: 'tls' }).replace(
        'path = "/" }',
        'path = "/", tls = "auto" }',
      ),
    );
    const deployed = await m1.h.ctl('deploy', '-f', tlsFile);
    expect(deployed.code, `${deployed.stdout}${deployed.stderr}\n${logs()}`).toBe(0);
    const root = await pebble.root();
    const served = await until(`${host} served by m1 and m2`, 90_000, async () => {
      const both = [];
      for (const m of [m1, m2]) {
        const hs = await tlsHandshake({
          host: m.host.address,
          port: m.h.gatewayHttpsPort,
          servername: host,
          ca: root,
        }).catch(() => null);
        if (hs === null) return null;
        if (!hs.authorized) {
          hs.socket.destroy();
          return null;
        }
        both.push({ m, hs });
      }
      return both;
    }).catch((error: Error) => {
      const m2Acme = m2.h.logs
        .join('')
        .split('\n')
        .filter((l) => l.includes('"plugin":"acme"'));
      throw new Error(
        `${error.message}\n${logs()}\nm2 acme:\n${m2Acme.slice(-10).join('\n')}\npebble:\n${pebble?.log().slice(-4000)}`,
      );
    });
    const [one, two] = served.map(({ hs }) => hs);
    // The same certificate on both machines, issued under Pebble's root for the route's hostname.
    expect(one?.serial).toBe(two?.serial);
    for (const { m, hs } of served) {
      const peer = hs.socket.getPeerCertificate();
      expect(peer.issuer.CN, m.name).toMatch(/^Pebble Intermediate CA/);
      expect(peer.subjectaltname, m.name).toBe(`DNS:${host}`);
      const answer = await requestOn(hs.socket, '/', host);
      expect(answer.status, m.name).toBe(200);
      expect(answer.body).toContain('(version fleet-tls)');
      hs.socket.destroy();
    }
    // m1 ordered it (one order); m2 has no renewer, so the HTTP-01 answer Pebble validated
    // (at m2's address and gateway port, nowhere else) came from m2's gateway.
    const issuedBy = (m: Machine) =>
      m.h.logs
        .join('')
        .split('\n')
        .filter((l) => l.includes('"msg":"certificate issued"'));
    expect(issuedBy(m1)).toHaveLength(1);
    expect(issuedBy(m2)).toHaveLength(0);
    expect(m2.h.logs.join('')).toContain('acme renewer off');
    const listed = (await m2.h.ctl('cert', 'ls')).json as {
      certificates: { hostname: string; renewer: string | null; state: string }[];
    };
    expect(listed.certificates.find((c) => c.hostname === host)).toMatchObject({
      renewer: 'm1',
      state: 'valid',
    });
    // Pebble's validations of this hostname all went to m2's gateway port (m1's is another).
    expect(m1.h.gatewayPort).not.toBe(m2.h.gatewayPort);
    const validations = pebble
      .log()
      .split('\n')
      .filter((l) => l.includes('Attempting to validate w/ HTTP:') && l.includes(`http://${host}:`));
    expect(validations.length, pebble.log().slice(-3000)).toBeGreaterThan(0);
    for (const l of validations)
      expect(l).toContain(`http://${host}:${m2.h.gatewayPort}/.well-known/acme-challenge/`);
  }, 180_000);
});
