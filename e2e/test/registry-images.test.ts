/**
 * Issue 20 items 1–3 against Debian's docker-registry on loopback (nothing leaves the machine):
 * - `scripts/images.sh --push <registry>` pushes every released image as
 *   <registry>/ployz/<app>:{<version>, <version>-<rev>, latest}; the registry's manifest for each
 *   is the local image (its config digest is the local image id) and its digest is the one printed;
 * - a machine whose engine holds no image at all joins with `machine join --registry` and pulls
 *   its data plane from the registry (progress and verification in ployzd's log), every component
 *   running the pushed image id at version <version>;
 * - the first machine, running the same images under their local names, restarted with
 *   PLOYZ_IMAGE_REGISTRY, pulls the registry names and adopts every container: the same image
 *   under another name is no drift;
 * - a registry that serves another version under this version's tag: the pull is refused
 *   (IMAGE_VERIFY_FAILED), the tag removed, the running gateway untouched; once the right image is
 *   back under the tag, the retry pulls it and adopts the gateway, without a restart.
 * The netns machines reach the registry at 127.0.0.1:<port> in their own netns (a relay there and
 * one on the host's veth address), so the image names are the same on every engine and dockerd
 * takes the registry over plain HTTP (127.0.0.0/8). Needs root, the images and docker-registry.
 */
import { execFile } from 'node:child_process';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { PLOYZ_VERSION, RELEASED_IMAGES } from '@ployz/protocol';
import {
  createNetnsHost,
  createNetnsLan,
  httpGet,
  type NetnsLan,
  type Registry,
  startRegistry,
} from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonHarness } from './daemon-harness.ts';
import { fleetLogs, type Machine, startMachine, startPloyzd, stopPloyzd, until } from './fleet-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('registry-images.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('registry-images.test.ts SKIPPED: not root');

const ROOT = join(import.meta.dirname, '..', '..');
const DATA_PLANE = ['networking', 'nats', 'gateway', 'dns'] as const;
const MANIFEST_V2 = 'application/vnd.docker.distribution.manifest.v2+json';

function sh(command: string, args: string[], timeout = 900_000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: ROOT, timeout, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout + stderr }),
    );
  });
}

async function localImage(ref: string): Promise<{ id: string; labels: Record<string, string> }> {
  const r = await sh('docker', ['image', 'inspect', ref, '--format', '{{json .Id}}|{{json .Config.Labels}}']);
  const [id = '""', labels = '{}'] = r.out.trim().split('|');
  return { id: JSON.parse(id) as string, labels: JSON.parse(labels) as Record<string, string> };
}

/** A TCP relay: connections to `listen` are piped to `target`. */
function relay(
  listen: { host: string; port: number },
  target: { host: string; port: number },
): Promise<Server> {
  const server = createServer((c) => {
    const u = createConnection(target.port, target.host);
    c.pipe(u).pipe(c);
    c.on('error', () => u.destroy());
    u.on('error', () => c.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve(server));
  });
}

/**
 * The registry at 127.0.0.1:<port> inside `m`'s netns: a relay there to the host's veth address,
 * one on the host from there to the registry on the host's loopback.
 */
async function registryIn(m: Machine, registry: Registry, servers: Server[]): Promise<void> {
  servers.push(
    await relay(
      { host: m.host.hostAddress, port: registry.port },
      { host: '127.0.0.1', port: registry.port },
    ),
  );
  const script = `const n=require('node:net');n.createServer(c=>{const u=n.connect(${registry.port},${JSON.stringify(m.host.hostAddress)});c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy())}).listen(${registry.port},'127.0.0.1',()=>console.log('ready'))`;
  const child = m.host.spawn(process.execPath, ['-e', script]);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the relay in ${m.name} exited (${code})`)));
  });
  const answer = await m.host.exec('curl', ['-fsS', '-m', '5', `http://127.0.0.1:${registry.port}/v2/`]);
  expect(answer.code, answer.stderr).toBe(0);
}

interface Component {
  component: string;
  container_id: string | null;
  state: string;
  running: boolean;
  image_id?: string | null;
  version?: string | null;
  skew?: string | null;
}

async function components(m: Machine): Promise<Component[]> {
  const r = await m.h.ctl('status');
  return ((r.json as { components?: Component[] } | null)?.components ?? []) as Component[];
}

describe.skipIf(!isRoot)('released images through a loopback registry', () => {
  let registry: Registry;
  let lan: NetnsLan;
  const machines: Machine[] = [];
  const servers: Server[] = [];
  let pushOutput = '';
  const logs = () => fleetLogs(machines, 6000);

  beforeAll(async () => {
    registry = await startRegistry();
    const t0 = Date.now();
    const pushed = await sh('bash', ['scripts/images.sh', '--push', registry.host]);
    pushOutput = pushed.out;
    expect(pushed.code, pushed.out).toBe(0);
    console.info(`images.sh --push (build check + push of every released image): ${Date.now() - t0} ms`);
    lan = await createNetnsLan('registry');
  }, 1_200_000);
  afterAll(async () => {
    await Promise.all(machines.map((m) => stopPloyzd(m.ployzd)));
    await Promise.all(machines.map((m) => m.host.destroy()));
    await lan?.destroy();
    await Promise.all(machines.map((m) => m.h[Symbol.asyncDispose]()));
    for (const s of servers) s.close();
    await registry?.stop();
  }, 180_000);

  it('images.sh --push puts every released image under <registry>/ployz/<app> at its version, revision and latest', async () => {
    for (const app of RELEASED_IMAGES) {
      const local = await localImage(`ployz/${app}:${PLOYZ_VERSION}`);
      expect(local.labels['org.opencontainers.image.version'], app).toBe(PLOYZ_VERSION);
      const revision = local.labels['org.opencontainers.image.revision'] ?? '';
      expect(revision, app).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
      expect(local.labels['org.opencontainers.image.source'], app).toMatch(/\S/);
      const shortRev = `${revision.slice(0, 12)}${revision.endsWith('-dirty') ? '-dirty' : ''}`;

      const tags = await httpGet(`${registry.url}/v2/ployz/${app}/tags/list`);
      expect(tags?.status, app).toBe(200);
      expect((JSON.parse(tags?.body ?? '{}') as { tags: string[] }).tags.sort(), app).toEqual(
        [PLOYZ_VERSION, `${PLOYZ_VERSION}-${shortRev}`, 'latest'].sort(),
      );
      const manifest = await httpGet(`${registry.url}/v2/ployz/${app}/manifests/${PLOYZ_VERSION}`, {
        accept: MANIFEST_V2,
      });
      expect(manifest?.status, app).toBe(200);
      // The registry holds this very image: its config blob is the local image id.
      expect((JSON.parse(manifest?.body ?? '{}') as { config: { digest: string } }).config.digest, app).toBe(
        local.id,
      );
      const digest = manifest?.headers['docker-content-digest'];
      expect(digest, app).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(pushOutput, app).toContain(`pushed ${registry.host}/ployz/${app}:{`);
      expect(pushOutput, app).toMatch(
        new RegExp(`pushed ${registry.host}/ployz/${app}:\\{[^}]*\\} ${digest}`),
      );
    }
    // hello is a test image: never pushed.
    expect((await httpGet(`${registry.url}/v2/ployz/hello/tags/list`))?.status).toBe(404);
  });

  it('a machine with an empty image store joins with --registry and pulls its data plane', async () => {
    const m1 = await startMachine(lan, 'r1');
    machines.push(m1);
    await startPloyzd(m1, true);
    const init = await m1.h.ctl('machine', 'init', '--id', 'r1', '--installation', m1.h.installation);
    expect(init.code, `${init.stdout}${init.stderr}\n${logs()}`).toBe(0);

    const host = await createNetnsHost('fleet-r2', { lan });
    const dockerd = await host.startDockerd();
    const h = await DaemonHarness.create();
    h.images = {}; // nothing pinned: the registry names
    const m2: Machine = { name: 'r2', host, dockerd, h, ployzd: null, lan: host.lanAddress ?? '' };
    machines.push(m2);
    expect(await dockerd.docker.listImages()).toEqual([]);
    await registryIn(m2, registry, servers);
    await startPloyzd(m2, false);

    const invite = await until('an invite from r1', 120_000, async () => {
      const r = await m1.h.ctl('machine', 'invite', '--ttl', '10m');
      return r.code === 0 ? (r.json as { token: string }) : null;
    });
    const joined = await m2.h.ctl('machine', 'join', invite.token, '--id', 'r2', '--registry', registry.host);
    expect(joined.code, `${joined.stdout}${joined.stderr}\n${logs()}`).toBe(0);
    expect((joined.json as { machine: { image_registry?: string } }).machine.image_registry).toBe(
      registry.host,
    );

    const running = await until('r2 runs its data plane', 180_000, async () => {
      const cs = await components(m2);
      return cs.length === 4 && cs.every((c) => c.running) ? cs : null;
    });
    for (const c of running) {
      const ref = `${registry.host}/ployz/${c.component}:${PLOYZ_VERSION}`;
      const pulled = await dockerd.docker.getImage(ref).inspect();
      expect(c.image_id, `${c.component}\n${logs()}`).toBe(pulled.Id);
      expect(pulled.Id, c.component).toBe((await localImage(`ployz/${c.component}:${PLOYZ_VERSION}`)).id);
      expect(c.version, c.component).toBe(PLOYZ_VERSION);
      expect(c.skew ?? null, c.component).toBeNull();
      expect(c.state, c.component).toBe('created');
      const container = await dockerd.docker.getContainer(c.container_id ?? '').inspect();
      expect(container.Config.Image, c.component).toBe(ref);
    }
    const text = h.logs.join('');
    for (const c of DATA_PLANE) {
      expect(text, c).toContain(`"image":"${registry.host}/ployz/${c}:${PLOYZ_VERSION}"`);
    }
    expect(text).toContain('pull progress');
    const pulls = [
      ...text.matchAll(/"component":"(\w+)".*?"ms":(\d+).*?data-plane image pulled and verified/g),
    ];
    expect(pulls.map((p) => p[1]).sort()).toEqual([...DATA_PLANE].sort());
    console.info(`pulled into an empty store: ${pulls.map((p) => `${p[1]} ${p[2]} ms`).join(', ')}`);
    // Nothing else was put in the empty store: the four data-plane images only.
    const tags = (await dockerd.docker.listImages()).flatMap((i) => i.RepoTags ?? []).sort();
    expect(tags).toEqual(DATA_PLANE.map((c) => `${registry.host}/ployz/${c}:${PLOYZ_VERSION}`).sort());
  }, 420_000);

  it('the same images under registry names are adopted, not recreated', async () => {
    const m1 = machines[0];
    if (m1 === undefined) throw new Error('the join test did not start r1');
    const before = await components(m1);
    expect(before.every((c) => c.running)).toBe(true);
    await registryIn(m1, registry, servers);
    await stopPloyzd(m1.ployzd);
    m1.h.images = {};
    m1.h.extraArgs = ['--image-registry', registry.host];
    await startPloyzd(m1, true);
    const after = await until('r1 reconciled with registry names', 120_000, async () => {
      const cs = await components(m1);
      return cs.length === 4 && cs.every((c) => c.state !== 'pending') ? cs : null;
    });
    for (const c of after) {
      const was = before.find((b) => b.component === c.component);
      expect(c.state, `${c.component}\n${logs()}`).toBe('adopted');
      expect(c.container_id, c.component).toBe(was?.container_id);
      expect(c.image_id, c.component).toBe(was?.image_id);
    }
    expect(m1.h.logs.join('').match(/data-plane image pulled and verified/g)?.length).toBe(4);
  }, 240_000);

  it('another version under this version’s tag is refused and replaces nothing; the right one back heals it', async () => {
    const m1 = machines[0];
    if (m1 === undefined) throw new Error('the join test did not start r1');
    const ref = `${registry.host}/ployz/gateway:${PLOYZ_VERSION}`;
    const gateway = m1.dockerd.docker.getContainer(`${m1.h.prefix}gateway`);
    const before = await gateway.inspect();
    // A different release pushed under 0.1.0: the gateway image with another version label.
    const build = await new Promise<number>((resolve) => {
      const p = execFile('docker', ['build', '-q', '-t', ref, '-'], (error) => resolve(error ? 1 : 0));
      p.stdin?.end(`FROM ployz/gateway:${PLOYZ_VERSION}\nLABEL org.opencontainers.image.version=9.9.9\n`);
    });
    expect(build).toBe(0);
    expect((await sh('docker', ['push', '--quiet', ref])).code).toBe(0);
    await sh('docker', ['rmi', ref]);
    // r1 lacks the tag now (its container keeps the image by id).
    await m1.dockerd.docker.getImage(ref).remove();
    await stopPloyzd(m1.ployzd);
    await startPloyzd(m1, true);
    const refused = await until('the refused pull', 60_000, async () => {
      const r = await m1.h.ctl('status');
      const error = (r.json as { reconcile?: { error?: { code: string; message: string } | null } }).reconcile
        ?.error;
      return error?.code === 'IMAGE_VERIFY_FAILED' ? error : null;
    });
    expect(refused.message).toContain('9.9.9');
    expect(
      await m1.dockerd.docker
        .getImage(ref)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(false);
    const during = await gateway.inspect();
    expect(during.Id).toBe(before.Id);
    expect(during.State.Running).toBe(true);
    expect(during.State.StartedAt).toBe(before.State.StartedAt);

    // The right image back under the tag: the retry (no restart) pulls it and adopts the gateway.
    expect((await sh('docker', ['tag', `ployz/gateway:${PLOYZ_VERSION}`, ref])).code).toBe(0);
    expect((await sh('docker', ['push', '--quiet', ref])).code).toBe(0);
    await sh('docker', ['rmi', ref]);
    const healed = await until('r1 reconciled again', 90_000, async () => {
      const cs = await components(m1);
      return cs.length === 4 && cs.every((c) => c.state === 'adopted') ? cs : null;
    });
    expect(healed.find((c) => c.component === 'gateway')?.container_id).toBe(before.Id);
    expect((await gateway.inspect()).State.StartedAt).toBe(before.State.StartedAt);
  }, 240_000);
});
