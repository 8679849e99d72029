/**
 * Issue 18 item 6 on two netns machines (real dockerd each, wireguard-go, nats-server, ployzd):
 * m2's engine lacks `ployz/hello:latest`, and there is no registry anywhere.
 * - the preview on m1 names m2 as lacking it (by m1's image id), in JSON and in its text;
 * - a deploy of replicas = 2 sends it from m1 to m2 at the probe step (progress in the deploy's
 *   events), succeeds with one instance per machine, and m1's gateway reaches both;
 * - m2 then holds m1's image id, and `image push` to it is a no-op that says so;
 * - `image push` of an image m1 lacks is IMAGE_MISSING;
 * - ps, logs and exec across machines (issue 21): `ps` on either machine names each instance's
 *   machine as its engine holds it; `logs` on m1 reads m2's instance over RPC (`<id>@m2 |`);
 *   `exec --instance <m2's>` on m1 runs there (its hostname), stdout/stderr/stdin and exit 7
 *   through; `logs --follow` on m1 keeps going across a deploy: the new instances on m1 and m2
 *   join with their lines; a service scaled to zero is NO_RUNNING_INSTANCE for exec and logs;
 * - automatic HTTPS on both machines (issue 21, ADR 0015): both ployzd run a renewer against a
 *   real Pebble (on the host end of m1's veth) with 30 s certificates, and Pebble's HTTP-01
 *   validation goes to m2's gateway only (its DNS answers m2's address, its HTTP-01 port is m2's
 *   gateway port): whichever machine takes the lease, its token in NATS KV is answered by m2.
 *   Both gateways serve the same Pebble-issued certificate by SNI; exactly one order, then
 *   exactly one renewal across the two renewers, both gateways swap to it; Pebble stopped → both
 *   keep serving it and `cert ls` / `status` on m1 and m2 say renewal is failing.
 * Needs root and the images (bash scripts/images.sh).
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificateList, DeployPlanView, ImagePushResult } from '@ployz/protocol';
import { type Pebble, requestOn, startPebble, tlsHandshake } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helloManifest, jsonLines, type StreamEntry } from './deploy-harness.ts';
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
const PLOYZCTL = join(import.meta.dirname, '..', '..', 'apps/ployzctl/bin/run.js');

/** The running workloads of `namespace` on each machine, as their engines hold them: instance → machine and hostname. */
async function workloadsOn(
  machines: readonly Machine[],
  namespace: string,
): Promise<Map<string, { machine: string; hostname: string }>> {
  const found = new Map<string, { machine: string; hostname: string }>();
  for (const m of machines) {
    const running = await m.dockerd.docker.listContainers({
      filters: { label: [`ployz.namespace=${namespace}`], status: ['running'] },
    });
    for (const c of running) {
      const info = await m.dockerd.docker.getContainer(c.Id).inspect();
      found.set(c.Labels['ployz.instance'] ?? '', { machine: m.name, hostname: info.Config.Hostname });
    }
  }
  return found;
}

/** The structured log records `m`'s ployzd wrote with message `msg`. */
function logged<T>(m: Machine, msg: string): T[] {
  return m.h.logs
    .join('')
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as T);
}

/** The serials `m` logged as issued (one line per order it won). */
const issuedBy = (m: Machine) => logged<{ serial: string }>(m, 'certificate issued').map((r) => r.serial);

/** The holders `m`'s renewer found ordering while it saw the hostname due (the lease refused it). */
const heldFor = (m: Machine) =>
  logged<{ holder: string }>(m, 'certificate order held by another renewer').map((r) => r.holder);

const ordersBy = (m: Machine) => logged(m, 'ordering a certificate').length;

/** A TLS handshake with `m`'s gateway for `host`, trusting only `ca`. */
const handshakeWith = (m: Machine, host: string, ca: string) =>
  tlsHandshake({ host: m.host.address, port: m.h.gatewayHttpsPort, servername: host, ca });

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
          validitySeconds: 30,
        });
        // Both machines run a renewer (the lease picks one per order).
        for (const m of [a, b])
          m.h.extraArgs = [
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

  it('ps on either machine names each instance’s machine as its engine holds it', async () => {
    const truth = await workloadsOn([m1, m2], 'images');
    expect([...truth.values()].map((w) => w.machine).sort()).toEqual(['m1', 'm2']);
    for (const m of [m1, m2]) {
      const ps = await m.h.ctl('ps', '-n', 'images');
      expect(ps.code, `${m.name}: ${ps.stdout}${ps.stderr}`).toBe(0);
      const view = ps.json as {
        services: {
          service: string;
          instances: { instance: string; machine: string; state: string; ready: boolean }[];
        }[];
      };
      const instances = view.services.find((s) => s.service === 'hello')?.instances ?? [];
      expect(Object.fromEntries(instances.map((i) => [i.instance, i.machine])), m.name).toEqual(
        Object.fromEntries([...truth].map(([id, w]) => [id, w.machine])),
      );
      for (const i of instances) expect(i).toMatchObject({ state: 'running', ready: true });
    }
    const human = await m1.h.human('ps', '-n', 'images');
    for (const [id, w] of truth)
      expect(human).toMatch(new RegExp(`images/hello\\s+${id}\\s+${w.machine}\\s+running\\s+yes`));
  }, 60_000);

  it('logs and exec on m1 reach the instance on m2 over RPC: lines named id@m2, exit code and output through', async () => {
    const truth = await workloadsOn([m1, m2], 'images');
    const [far, w] = [...truth].find(([, v]) => v.machine === 'm2') ?? [];
    if (far === undefined || w === undefined)
      throw new Error(`no instance on m2: ${JSON.stringify([...truth])}`);
    const logged = await m1.h.run(['logs', 'images/hello', '--json']);
    expect(logged.code, `${logged.stderr}\n${logs()}`).toBe(0);
    const lines = jsonLines(logged.stdout).filter((e) => e.type === 'line');
    expect(Object.fromEntries(lines.map((l) => [l.instance, l.machine]))).toEqual(
      Object.fromEntries([...truth].map(([id, v]) => [id, v.machine])),
    );
    const times = lines.map((l) => l.at ?? '');
    expect(times).toEqual([...times].sort());
    const plain = await m1.h.run(['logs', 'images/hello', '--instance', far, '--tail', '1']);
    expect(plain.stdout.trim()).toMatch(new RegExp(`^${far}@m2 \\| .*listening`));

    const run = await m1.h.run([
      'exec',
      'images/hello',
      '--instance',
      far,
      '--',
      'sh',
      '-c',
      'echo out; echo err >&2; exit 7',
    ]);
    expect(run, logs()).toMatchObject({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    // It ran on m2: the container's own hostname.
    expect(
      (await m1.h.run(['exec', 'images/hello', '--instance', far, '--', 'hostname'])).stdout.trim(),
    ).toBe(w.hostname);
    const cat = await m1.h.run(
      ['exec', 'images/hello', '--instance', far, '-i', '--', 'cat'],
      'through m2\n',
    );
    expect(cat).toMatchObject({ code: 0, stdout: 'through m2\n' });
  }, 60_000);

  it('logs --follow on m1 keeps going across a deploy: the new instances on m1 and m2 join', async () => {
    const before = await workloadsOn([m1, m2], 'images');
    const follow = spawn(
      process.execPath,
      [
        '--conditions=ployz-source',
        PLOYZCTL,
        'logs',
        'images/hello',
        '--follow',
        '--json',
        '--socket',
        m1.h.socket,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let followed = '';
    follow.stdout.on('data', (b: Buffer) => {
      followed += b.toString();
    });
    follow.stderr.on('data', (b: Buffer) => {
      followed += b.toString();
    });
    try {
      const seen = (pred: (e: StreamEntry) => boolean) => jsonLines(followed).filter(pred);
      await until('the v1 lines of both instances', 30_000, async () =>
        new Set(seen((e) => e.type === 'line').map((e) => e.machine)).size === 2 ? true : null,
      ).catch((e: Error) => {
        throw new Error(`${e.message}: ${followed}`);
      });
      // A new revision (another env value): both slots get new instances; a second service
      // scaled to zero has none.
      const v2 = join(m1.h.dir, 'images-v2.toml');
      await writeFile(
        v2,
        `${helloManifest({ version: 'v2', host: HOST, namespace: 'images' }).replace(
          'name = "hello"\n',
          'name = "hello"\nplacement = { replicas = 2 }\n',
        )}\n[[services]]\nname = "idle"\nimage = "${IMAGE}"\nplacement = { replicas = 0 }\n`,
      );
      const deployed = await m1.h.ctl('deploy', '-f', v2);
      expect(deployed.code, `${deployed.stdout}${deployed.stderr}\n${logs()}`).toBe(0);
      const after = await workloadsOn([m1, m2], 'images');
      expect([...after.values()].map((w) => w.machine).sort()).toEqual(['m1', 'm2']);
      const joined = await until('the new instances joined with their v2 lines', 30_000, async () => {
        const j = seen((e) => e.type === 'instance' && e.event === 'joined');
        const v2Lines = seen((e) => e.type === 'line' && (e.text?.includes('"v2"') ?? false));
        const withLines = new Set(v2Lines.map((l) => `${l.instance}@${l.machine}`));
        return j.length === 2 && j.every((e) => withLines.has(`${e.instance}@${e.machine}`)) ? j : null;
      }).catch((e: Error) => {
        throw new Error(`${e.message}: ${followed}`);
      });
      expect(Object.fromEntries(joined.map((e) => [e.instance, e.machine]))).toEqual(
        Object.fromEntries([...after].map(([id, v]) => [id, v.machine])),
      );
      await until('the old instances leaving', 30_000, async () =>
        seen((e) => e.type === 'instance' && e.event === 'left').length === 2 ? true : null,
      );
      const times = seen((e) => e.type === 'line').map((l) => l.at ?? '');
      expect(times).toEqual([...times].sort());
    } finally {
      follow.kill('SIGINT');
    }

    // Errors with their codes: a service with no running instance, an instance that is gone.
    for (const args of [
      ['exec', 'images/idle', '--', 'true'],
      ['logs', 'images/idle'],
      ['exec', 'images/hello', '--instance', [...before.keys()][0] ?? '', '--', 'true'],
    ])
      expect(await m1.h.run(args), args.join(' ')).toMatchObject({
        code: 2,
        stderr: expect.stringContaining('NO_RUNNING_INSTANCE'),
      });
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

  it('a tls = "auto" route: one renewer orders, m2’s gateway answers the challenge, both serve the Pebble certificate by SNI; one renewal, both swap; Pebble down → both keep serving, m1 and m2 say failing', async () => {
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
        const hs = await handshakeWith(m, host, root).catch(() => null);
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
    // One order across the two renewers (the lease): the machine that logged it is the renewer
    // both machines list.
    const first = one?.serial ?? '';
    const issued = () => [...issuedBy(m1), ...issuedBy(m2)];
    expect(issued().map((x) => BigInt(`0x${x}`))).toEqual([BigInt(`0x${first}`)]);
    const orderer = issuedBy(m1).length === 1 ? 'm1' : 'm2';
    const cert = async (m: Machine) =>
      ((await m.h.ctl('cert', 'ls')).json as CertificateList | null)?.certificates.find(
        (c) => c.hostname === host,
      );
    for (const m of [m1, m2])
      expect(await cert(m), m.name).toMatchObject({ renewer: orderer, state: 'valid' });
    // Pebble's validations of this hostname all went to m2's gateway port (m1's is another), so
    // m2's gateway answered the token whichever machine wrote it into NATS KV.
    expect(m1.h.gatewayPort).not.toBe(m2.h.gatewayPort);
    const validations = () =>
      pebble
        ?.log()
        .split('\n')
        .filter((l) => l.includes('Attempting to validate w/ HTTP:') && l.includes(`http://${host}:`)) ?? [];
    expect(validations().length, pebble.log().slice(-3000)).toBeGreaterThan(0);

    // Renewal at two thirds of 30 s: both gateways swap to one new certificate, ordered once.
    const renewed = await until('both gateways serving the renewed certificate', 60_000, async () => {
      const serials = new Set<string>();
      for (const m of [m1, m2]) {
        const hs = await handshakeWith(m, host, root).catch(() => null);
        hs?.socket.destroy();
        if (hs === null || !hs.authorized || hs.serial === first) return null;
        serials.add(hs.serial);
      }
      return serials.size === 1 ? ([...serials][0] ?? null) : null;
    });
    // A few passes of both renewers later: still two orders in all, the renewed one not due.
    await new Promise((r) => setTimeout(r, 3_000));
    // Which machine ordered which is the lease's choice: compared as a set.
    const bySerial = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
    expect(
      issued()
        .map((x) => BigInt(`0x${x}`))
        .sort(bySerial),
    ).toEqual([BigInt(`0x${first}`), BigInt(`0x${renewed}`)].sort(bySerial));
    expect(ordersBy(m1) + ordersBy(m2)).toBe(2);
    const renewer = issuedBy(m1).some((x) => BigInt(`0x${x}`) === BigInt(`0x${renewed}`)) ? 'm1' : 'm2';
    // Both renewers saw it due: the other one was refused by the lease while the order ran.
    const held = [...heldFor(m1), ...heldFor(m2)];
    console.log(
      `fleet-images acme: first order by ${orderer}, renewal by ${renewer}; lease refused the other ${held.length}×`,
    );
    expect(held.length).toBeGreaterThan(0);
    for (const m of [m1, m2])
      for (const holder of heldFor(m)) {
        expect(holder, m.name).not.toBe(m.name);
        expect([orderer, renewer], m.name).toContain(holder);
      }
    for (const l of validations())
      expect(l).toContain(`http://${host}:${m2.h.gatewayPort}/.well-known/acme-challenge/`);

    // Pebble down: the next renewal fails; every machine says so and keeps serving the renewed one.
    await pebble.stop();
    for (const m of [m2, m1]) {
      const failing = await until(`${m.name}: cert ls says failing`, 90_000, async () => {
        const c = await cert(m);
        return c?.state === 'failing' ? c : null;
      });
      expect(failing.last_error?.code, m.name).toBe('ACME_ORDER_FAILED');
      const status = await m.h.ctl('status');
      const failingHosts = (status.json as { certificates: { failing: { hostname: string }[] } }).certificates
        .failing;
      expect(
        failingHosts.map((f) => f.hostname),
        m.name,
      ).toEqual([host]);
      expect(await m.h.human('status'), m.name).toContain(`renewal failing: ${host}`);
    }
    for (const m of [m1, m2]) {
      const hs = await handshakeWith(m, host, root);
      hs.socket.destroy();
      expect(hs.serial, m.name).toBe(renewed);
    }
    expect(issued()).toHaveLength(2);
  }, 240_000);
});
