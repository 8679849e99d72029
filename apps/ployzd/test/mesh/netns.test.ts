/**
 * Two machines on one LAN (testkit netns hosts, a dockerd each), each with its own bridge /24 and
 * a ployz-networking built from the daemon's own spec (desiredSpecs) with its own WireGuard key.
 * Peers from two MachineRecords are applied with the mesh module (wg0 in the networking netns,
 * the peer subnet via `.2` on the host), and a workload on A reaches a workload on B by container
 * IP — B sees A's container IP, no NAT — and back. The guard still closes B's system ports to
 * A's workloads. Needs root and the images (bash scripts/images.sh networking hello).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_CLIENT_PORT } from '@ployz/protocol';
import { MemoryRoutingFeed } from '@ployz/routing';
import {
  containerOutput,
  createNetnsHost,
  createNetnsLan,
  type NetnsDockerd,
  type NetnsHost,
  type NetnsLan,
} from '@ployz/testkit';
import type { MachineRecord } from '@ployz/types';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  desiredSpecs,
  hostBridgeAddress,
  networkingAddress,
  specHash,
} from '../../src/dataplane/component-spec.ts';
import { type CommandRunner, dockerExecRunner, mustRun } from '../../src/mesh/command.ts';
import { type MeshEvent, MeshManager, networkingTargets } from '../../src/mesh/manager.ts';
import { desiredPeers } from '../../src/mesh/peers.ts';
import { MESH_ROUTE_PROTO, syncHostRoutes } from '../../src/mesh/routes.ts';
import { WireguardInterface } from '../../src/mesh/wireguard.ts';
import { DockerEngine } from '../../src/runtime/docker.ts';
import { machineRecord, wireguardKeys } from './keys.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) {
  throw new Error(
    'mesh netns.test.ts needs root (network namespaces); CI runs as root, so this is a failure',
  );
}
if (!isRoot) console.warn('mesh netns.test.ts SKIPPED: not root (network namespaces need root)');

const IMAGES = ['ployz/networking', 'ployz/hello'];
const BRIDGE = 'ployz';
const WG_PORT = 51820;
const ECHO_PORT = 8080;

interface Machine {
  host: NetnsHost;
  dockerd: NetnsDockerd;
  record: MachineRecord;
  keyDir: string;
  networking: string;
  /** Commands in the networking container's netns, and on the machine (the netns host). */
  inNetworking: CommandRunner;
  onHost: CommandRunner;
  wg: WireguardInterface;
}

function workloadAddress(record: MachineRecord): string {
  return record.subnet.replace(/\.0\/24$/, '.16');
}

async function startMachine(lan: NetnsLan, n: number): Promise<Machine> {
  const host = await createNetnsHost(`mesh-m${n}`, { lan });
  try {
    const dockerd = await host.startDockerd();
    await dockerd.loadImages(IMAGES);
    const keys = wireguardKeys();
    const record = machineRecord(`m${n}`, keys.publicKey, {
      overlay_ip: `fd70:6c6f:797a:${n}:0:0:0:1`,
      subnet: `10.210.${200 + n}.0/24`,
      endpoints: [`${host.lanAddress ?? ''}:${WG_PORT}`],
    });
    const keyDir = await mkdtemp(join(tmpdir(), `ployz-mesh-m${n}-`));
    await writeFile(join(keyDir, 'private.key'), `${keys.privateKey}\n`, { mode: 0o600 });
    const engine = new DockerEngine(dockerd.docker);
    await engine.ensureBridge({
      name: BRIDGE,
      subnet: record.subnet,
      gateway: hostBridgeAddress(record.subnet),
      installation: 'mesh-test',
    });
    const imageId = await engine.imageId('ployz/networking');
    const [spec] = desiredSpecs({
      installation: 'mesh-test',
      authority: 'auth-mesh-test',
      machineId: record.id,
      overlayIp: record.overlay_ip,
      overlayPrefix: 'fd70:6c6f:797a::/48',
      subnet: record.subnet,
      containerPrefix: 'ployz-',
      bridgeName: BRIDGE,
      gatewayHostPort: 18080,
      gatewayHttpsHostPort: null,
      gatewayHostIp: '127.0.0.1',
      wireguardPort: WG_PORT,
      wireguardKeyDir: keyDir,
      natsDataDir: join(keyDir, 'nats'),
      acmeDir: join(keyDir, 'acme'),
      natsAuth: null,
      natsMesh: null,
      images: { networking: 'ployz/networking', nats: 'none', gateway: 'none', dns: 'none' },
      imageIds: { networking: imageId, nats: 'none', gateway: 'none', dns: 'none' },
      extraEnv: {},
    });
    if (spec?.component !== 'networking') throw new Error('desiredSpecs did not start with networking');
    const networking = await engine.createStarted(spec, specHash(spec), null);
    const inNetworking = dockerExecRunner(dockerd.docker, networking);
    for (let i = 0; (await inNetworking(['test', '-f', '/run/ployz/networking.ready'])).code !== 0; i++) {
      if (i > 200) throw new Error(`ployz-networking on m${n} never became ready`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const onHost: CommandRunner = ([program = '', ...args]) => host.exec(program, args);
    return {
      host,
      dockerd,
      record,
      keyDir,
      networking,
      inNetworking,
      onHost,
      wg: new WireguardInterface(inNetworking),
    };
  } catch (error) {
    await host.destroy();
    throw error;
  }
}

/** A container on the machine's bridge at a fixed address, running `node -e script` from the hello image. */
async function runNode(
  m: Machine,
  name: string,
  script: string,
  options: { ip?: string; network?: string } = {},
): Promise<Docker.Container> {
  const network = options.network ?? BRIDGE;
  const container = await m.dockerd.docker.createContainer({
    name,
    Image: 'ployz/hello',
    Entrypoint: ['node', '-e', script],
    HostConfig: { NetworkMode: network },
    ...(options.ip
      ? { NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: options.ip } } } } }
      : {}),
  });
  await container.start();
  return container;
}

/** Answers every request with the caller's address as this server sees it. */
const ECHO_SERVER = `require('http').createServer((q,s)=>s.end(String(q.socket.remoteAddress).replace(/^::ffff:/,'')+' '+require('os').hostname())).listen(${ECHO_PORT})`;
/** Listens on a guarded system port (stands in for NATS). */
const SYSTEM_LISTENER = `require('net').createServer(c=>c.end('system\\n')).listen(${NATS_CLIENT_PORT})`;

function client(url: string, guarded: { host: string; port: number }, samples: number): string {
  return `
const net = require('net');
const tcp = (host, port) => new Promise((done) => {
  const s = net.connect(port, host);
  s.setTimeout(3000);
  s.on('data', () => { s.destroy(); done('answered'); });
  s.on('error', (e) => done(e.code));
  s.on('timeout', () => { s.destroy(); done('timeout'); });
});
(async () => {
  let body = null, error = null;
  for (let i = 0; i < 20 && body === null; i++) {
    try { body = await (await fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(3000) })).text(); }
    catch (e) { error = String(e.cause?.code ?? e.message); }
  }
  const ms = [];
  for (let i = 0; body !== null && i < ${samples}; i++) {
    const t = process.hrtime.bigint();
    await (await fetch(${JSON.stringify(url)})).text();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const guard = await tcp(${JSON.stringify(guarded.host)}, ${guarded.port});
  console.log(JSON.stringify({ body, error, guard, p50: ms[ms.length >> 1] ?? null, p99: ms[Math.floor(ms.length * 0.99)] ?? null }));
})();`;
}

interface ClientReport {
  body: string | null;
  error: string | null;
  guard: string;
  p50: number | null;
  p99: number | null;
}

async function report(container: Docker.Container): Promise<ClientReport> {
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  const { stdout, stderr } = await containerOutput(container);
  if (StatusCode !== 0) throw new Error(`client exited ${StatusCode}: ${stdout}${stderr}`);
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as ClientReport;
}

describe.skipIf(!isRoot)('the mesh between two netns machines (wireguard-go, needs root)', () => {
  let lan: NetnsLan;
  let a: Machine;
  let b: Machine;

  beforeAll(async () => {
    lan = await createNetnsLan('mesh');
    [a, b] = await Promise.all([startMachine(lan, 1), startMachine(lan, 2)]);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([a?.host.destroy(), b?.host.destroy()]);
    await lan?.destroy();
    await Promise.all([a, b].map((m) => (m ? rm(m.keyDir, { recursive: true, force: true }) : undefined)));
  }, 120_000);

  it('applies peers from the records on both machines and the peer subnet via .2 on each host', async () => {
    const records = [a.record, b.record];
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const applied = await self.wg.apply(desiredPeers(self.record, records));
      expect(applied.publicKey).toBe(self.record.public_key);
      expect(applied.peers).toMatchObject([{ kind: 'add', peer: { publicKey: other.record.public_key } }]);
      const host = await syncHostRoutes(self.onHost, networkingAddress(self.record.subnet), [
        other.record.subnet,
      ]);
      expect(host).toEqual({ replaced: [other.record.subnet], removed: [] });
      const routes = await mustRun(
        self.onHost,
        ['ip', '-4', 'route', 'show', 'proto', MESH_ROUTE_PROTO],
        'test',
      );
      expect(routes).toContain(`${other.record.subnet} via ${networkingAddress(self.record.subnet)}`);
      // Re-applied: nothing to do on either side.
      expect(
        await syncHostRoutes(self.onHost, networkingAddress(self.record.subnet), [other.record.subnet]),
      ).toEqual({
        replaced: [],
        removed: [],
      });
      expect((await self.wg.apply(desiredPeers(self.record, records))).peers).toEqual([]);
    }
  });

  it('a workload on A reaches a workload on B by container IP, B sees A’s container IP, and B’s system ports stay closed', async () => {
    const target = workloadAddress(b.record);
    const source = workloadAddress(a.record);
    await runNode(b, 'echo', ECHO_SERVER, { ip: target });
    await runNode(b, 'system', SYSTEM_LISTENER, { network: `container:${b.networking}` });
    const fromA = await report(
      await runNode(
        a,
        'client',
        client(
          `http://${target}:${ECHO_PORT}/`,
          { host: networkingAddress(b.record.subnet), port: NATS_CLIENT_PORT },
          50,
        ),
        { ip: source },
      ),
    );
    expect(fromA.body, `fetch failed: ${fromA.error}`).toMatch(
      new RegExp(`^${source.replaceAll('.', '\\.')} `),
    );
    expect(fromA.guard).toBe('ECONNREFUSED');
    // It was the guard's rule for the tunnel that refused it (A's subnet is not B's own).
    const guard = await mustRun(b.inNetworking, ['iptables', '-L', 'PLOYZ-GUARD', '-v', '-n', '-x'], 'test');
    const tunnelRule = guard.split('\n').find((l) => / wg0 /.test(l) && l.includes('REJECT'));
    expect(Number(tunnelRule?.trim().split(/\s+/)[0])).toBeGreaterThan(0);

    // The tunnel carried it: both sides have a handshake with the other.
    for (const [self, other] of [
      [a, b],
      [b, a],
    ] as const) {
      const peer = (await self.wg.read()).peers.find((p) => p.publicKey === other.record.public_key);
      expect(peer?.latestHandshake).toBeGreaterThan(0);
    }
    // B's own host still reaches its system port (the guard lets .1 through); the listener answers.
    const local = await b.host.exec('bash', [
      '-c',
      `exec 3<>/dev/tcp/${networkingAddress(b.record.subnet)}/${NATS_CLIENT_PORT} && head -c 7 <&3`,
    ]);
    expect(local.stdout).toBe('system\n');
    // The machines themselves talk over the overlay IPv6 (NATS between machines): not guarded.
    const overlay = await mustRun(
      a.inNetworking,
      ['bash', '-c', `exec 3<>/dev/tcp/${b.record.overlay_ip}/${NATS_CLIENT_PORT} && head -c 7 <&3`],
      'test',
    );
    expect(overlay).toBe('system\n');

    // The same requests from a workload on B itself, for scale.
    const sameMachine = await report(
      await runNode(
        b,
        'client-local',
        client(
          `http://${target}:${ECHO_PORT}/`,
          { host: networkingAddress(b.record.subnet), port: NATS_CLIENT_PORT },
          50,
        ),
        { ip: workloadAddress(b.record).replace(/\.16$/, '.17') },
      ),
    );
    console.info(
      `mesh netns.test.ts: 50 sequential HTTP requests, workload ${source} (m1) → ${target} (m2) over wireguard-go: p50 ${fromA.p50?.toFixed(2)} ms, p99 ${fromA.p99?.toFixed(2)} ms; same machine (m2 → m2): p50 ${sameMachine.p50?.toFixed(2)} ms, p99 ${sameMachine.p99?.toFixed(2)} ms`,
    );
  });

  it('a machine leaving removes its peer and its routes on the other, without restarting anything', async () => {
    const before = (await a.dockerd.docker.getContainer(a.networking).inspect()).State.StartedAt;
    const gone = await a.wg.apply(desiredPeers(a.record, [a.record]));
    expect(gone.peers).toEqual([{ kind: 'remove', publicKey: b.record.public_key }]);
    expect(gone.routes).toEqual({ replaced: [], removed: [b.record.subnet] });
    expect(await syncHostRoutes(a.onHost, networkingAddress(a.record.subnet), [])).toEqual({
      replaced: [],
      removed: [b.record.subnet],
    });
    expect(await mustRun(a.onHost, ['ip', '-4', 'route', 'show', 'proto', MESH_ROUTE_PROTO], 'test')).toBe(
      '',
    );
    const info = await a.dockerd.docker.getContainer(a.networking).inspect();
    expect(info.State.StartedAt).toBe(before);
    expect(info.RestartCount).toBe(0);
  });
  it('MeshManager with the real targets re-peers B from a machine_upserted event, and a restarted one changes nothing', async () => {
    const feed = new MemoryRoutingFeed({ machines: [a.record] });
    const targets = networkingTargets(
      a.dockerd.docker,
      a.networking,
      networkingAddress(a.record.subnet),
      a.onHost,
    );
    const events: MeshEvent[] = [];
    const waiters: (() => void)[] = [];
    const next = async (n: number) => {
      while (events.length < n) await new Promise<void>((r) => waiters.push(r));
      return events[n - 1];
    };
    const manage = () => {
      const abort = new AbortController();
      const running = new MeshManager({
        self: a.record,
        feed: () => feed,
        targets,
        onEvent: (e) => {
          events.push(e);
          for (const w of waiters.splice(0)) w();
        },
        resyncMs: 0,
      }).run(abort.signal);
      return async () => {
        abort.abort();
        await running;
      };
    };
    const stopFirst = manage();
    expect(await next(1)).toMatchObject({ kind: 'applied', peers: [], wireguard: { peers: [] } });
    feed.publish({ type: 'machine_upserted', machine: b.record, deploy_id: null, at: b.record.updated_at });
    expect(await next(2)).toMatchObject({
      kind: 'applied',
      peers: ['m2'],
      wireguard: { peers: [{ kind: 'add' }], routes: { replaced: [b.record.subnet] } },
      host: { replaced: [b.record.subnet], removed: [] },
    });
    await stopFirst();

    // ployzd restarts: nothing to apply, and the tunnel still carries A's workload to B's.
    const stopSecond = manage();
    expect(await next(3)).toMatchObject({
      kind: 'applied',
      peers: ['m2'],
      wireguard: { peers: [], routes: { replaced: [], removed: [] } },
      host: { replaced: [], removed: [] },
    });
    await stopSecond();
    const source = workloadAddress(a.record).replace(/\.16$/, '.17');
    const again = await report(
      await runNode(
        a,
        'client-after-restart',
        client(
          `http://${workloadAddress(b.record)}:${ECHO_PORT}/`,
          { host: networkingAddress(b.record.subnet), port: NATS_CLIENT_PORT },
          5,
        ),
        { ip: source },
      ),
    );
    expect(again.body, `fetch failed: ${again.error}`).toMatch(
      new RegExp(`^${source.replaceAll('.', '\\.')} `),
    );
  });
});
