/**
 * Issue 18 item 2 on two real machines: two netns hosts on one LAN, each with its own dockerd and
 * its own ployzd (inside the netns, as on a real host) and data plane. m1 is initialised and
 * issues an invite; m2 — not initialised — joins with it through m1's join listener. A forged
 * token changes nothing on m2; afterwards both records carry their LAN endpoint, both meshes peer
 * (wg0 on each has the other's key), and a workload on m1 reaches a workload on m2 by container IP.
 * Needs root and the images (bash scripts/images.sh).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  containerOutput,
  createNetnsHost,
  createNetnsLan,
  type NetnsDockerd,
  type NetnsHost,
  type NetnsLan,
} from '@ployz/testkit';
import type { MachineRecord } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonHarness } from './daemon-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('fleet-join.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('fleet-join.test.ts SKIPPED: not root');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLOYZD = join(ROOT, 'apps/ployzd/src/main.ts');
const WG_PORT = 51820;
const JOIN_PORT = 51821;
const ECHO_PORT = 8080;

interface Machine {
  name: string;
  host: NetnsHost;
  dockerd: NetnsDockerd;
  h: DaemonHarness;
  ployzd: ChildProcess | null;
  lan: string;
}

async function startMachine(lan: NetnsLan, name: string): Promise<Machine> {
  const host = await createNetnsHost(`fleet-${name}`, { lan });
  const dockerd = await host.startDockerd();
  const h = await DaemonHarness.create();
  await dockerd.loadImages([...Object.values(h.images), 'ployz/hello:latest']);
  for (const [c, id] of Object.entries(h.images))
    await dockerd.docker.getImage(id).tag({ repo: `ployz/${c}`, tag: 'latest' });
  return { name, host, dockerd, h, ployzd: null, lan: host.lanAddress ?? '' };
}

/** ployzd inside the machine's netns; `subnet` pinned only on the first machine (a joiner gets one). */
async function startPloyzd(m: Machine, pinSubnet: boolean): Promise<void> {
  const { h, host, dockerd } = m;
  const args = [
    '--conditions=ployz-source',
    PLOYZD,
    'run',
    ...['--state-dir', h.stateDir, '--socket-path', h.socket, '--container-prefix', h.prefix],
    ...['--bridge-name', h.bridge, '--docker-socket', dockerd.socketPath],
    ...(pinSubnet ? ['--subnet', h.subnet] : []),
    ...['--gateway-port', String(h.gatewayPort), '--gateway-host-ip', host.address],
    ...['--wireguard-port', String(WG_PORT), '--lan-address', m.lan, '--join-port', String(JOIN_PORT)],
    ...Object.entries(h.images).flatMap(([c, id]) => [`--image-${c}`, id]),
  ];
  const proc = host.spawn(process.execPath, args);
  proc.stdout?.on('data', (d: Buffer) => h.logs.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => h.logs.push(d.toString()));
  m.ployzd = proc;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`ployzd on ${m.name} exited: ${h.logs.join('')}`);
    if (existsSync(h.socket) && (await h.status()) !== null) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ployzd on ${m.name} did not answer: ${h.logs.join('')}`);
}

async function stopPloyzd(m: Machine | undefined): Promise<void> {
  const proc = m?.ployzd;
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function wgPeers(m: Machine): Promise<string[]> {
  const exec = await m.dockerd.docker
    .getContainer(`${m.h.prefix}networking`)
    .exec({ Cmd: ['wg', 'show', 'wg0', 'peers'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  await new Promise((resolve) => {
    stream.on('data', (d: Buffer) => chunks.push(d));
    stream.on('end', resolve);
  });
  // Docker's multiplexed stream: 8-byte frame headers before each chunk.
  const raw = Buffer.concat(chunks);
  let text = '';
  for (let i = 0; i + 8 <= raw.length; ) {
    const size = raw.readUInt32BE(i + 4);
    text += raw.subarray(i + 8, i + 8 + size).toString();
    i += 8 + size;
  }
  return text.split('\n').filter(Boolean);
}

async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [])).sort();
}

describe.skipIf(!isRoot)('join with an invite: two netns machines, two real ployzd', () => {
  let lan: NetnsLan;
  let m1: Machine;
  let m2: Machine;

  beforeAll(async () => {
    lan = await createNetnsLan('fleet');
    [m1, m2] = await Promise.all([startMachine(lan, 'm1'), startMachine(lan, 'm2')]);
    await Promise.all([startPloyzd(m1, true), startPloyzd(m2, false)]);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([stopPloyzd(m1), stopPloyzd(m2)]);
    await Promise.all([m1?.host.destroy(), m2?.host.destroy()]);
    await lan?.destroy();
    await Promise.all([m1?.h[Symbol.asyncDispose](), m2?.h[Symbol.asyncDispose]()]);
  }, 120_000);

  it('m1 inits and invites; a forged token changes nothing on m2; the real one joins; both mesh; workload → workload by container IP', async () => {
    const init = await m1.h.ctl('machine', 'init', '--id', 'm1', '--installation', m1.h.installation);
    expect(init.code, `${init.stdout}${init.stderr}\n${m1.h.logs.join('')}`).toBe(0);
    // The invite needs NATS, the record and the join listener: retried until ployzd has them.
    const invite = await until('an invite from m1', 120_000, async () => {
      const r = await m1.h.ctl('machine', 'invite', '--ttl', '10m');
      return r.code === 0 ? (r.json as { token: string; join: string }) : null;
    });
    expect(invite.join).toBe(`${m1.lan}:${JOIN_PORT}`);
    const status = await m1.h.ctl('status');
    expect((status.json as { join: { address: string | null } }).join.address).toBe(invite.join);
    const m1Record = await until('m1 record with its LAN endpoint', 30_000, async () => {
      const ls = await m1.h.ctl('machine', 'ls');
      const self = (ls.json as { machines?: MachineRecord[] } | null)?.machines?.find((r) => r.id === 'm1');
      return self?.endpoints.length ? self : null;
    });
    expect(m1Record.endpoints).toEqual([`${m1.lan}:${WG_PORT}`]);

    // A forged token: refused by m1, nothing on m2's disk.
    const before = await listing(m2.h.dir);
    const [v, payload = '', sig = ''] = invite.token.split('.');
    const bytes = Buffer.from(payload, 'base64url');
    bytes[3] = (bytes[3] ?? 0) ^ 0x01;
    const forged = await m2.h.ctl(
      'machine',
      'join',
      `${v}.${bytes.toString('base64url')}.${sig}`,
      '--id',
      'm2',
    );
    expect(forged.code).toBe(2);
    expect((forged.json as { error: { code: string } }).error.code).toBe('INVITE_INVALID');
    expect(await listing(m2.h.dir)).toEqual(before);

    const joined = await m2.h.ctl('machine', 'join', invite.token, '--id', 'm2');
    expect(joined.code, `${joined.stdout}${joined.stderr}\n${m2.h.logs.join('').slice(-4000)}`).toBe(0);
    const identity = (
      joined.json as { machine: { installation: string; subnet: string; public_key: string } }
    ).machine;
    expect(identity.installation).toBe(m1.h.installation);

    // m1's store holds m2's record, with m2's LAN endpoint and the /24 m2 was given.
    const ls = await m1.h.ctl('machine', 'ls');
    const m2Record = (ls.json as { machines: MachineRecord[] }).machines.find((r) => r.id === 'm2');
    expect(m2Record).toMatchObject({ subnet: identity.subnet, endpoints: [`${m2.lan}:${WG_PORT}`] });

    // Both meshes peer: wg0 on each machine carries the other's key.
    await until('m1 peers with m2', 90_000, async () =>
      (await wgPeers(m1).catch((): string[] => [])).includes(identity.public_key) ? true : null,
    );
    await until('m2 peers with m1', 90_000, async () =>
      (await wgPeers(m2).catch((): string[] => [])).includes(m1Record.public_key) ? true : null,
    );

    // A workload on m2 serves; a workload on m1 reaches it by container IP across wg0.
    const target = identity.subnet.replace(/\.0\/24$/, '.16');
    const source = m1Record.subnet.replace(/\.0\/24$/, '.16');
    const echo = await m2.dockerd.docker.createContainer({
      name: 'fleet-echo',
      Image: 'ployz/hello:latest',
      Entrypoint: [
        'node',
        '-e',
        `require('http').createServer((q,s)=>s.end(String(q.socket.remoteAddress).replace(/^::ffff:/,''))).listen(${ECHO_PORT})`,
      ],
      HostConfig: { NetworkMode: m2.h.bridge },
      NetworkingConfig: { EndpointsConfig: { [m2.h.bridge]: { IPAMConfig: { IPv4Address: target } } } },
    });
    await echo.start();
    const client = await m1.dockerd.docker.createContainer({
      name: 'fleet-client',
      Image: 'ployz/hello:latest',
      Entrypoint: [
        'node',
        '-e',
        `(async()=>{for(let i=0;i<60;i++){try{console.log(await (await fetch('http://${target}:${ECHO_PORT}/',{signal:AbortSignal.timeout(2000)})).text());return}catch(e){await new Promise(r=>setTimeout(r,1000))}}console.log('unreachable')})()`,
      ],
      HostConfig: { NetworkMode: m1.h.bridge },
      NetworkingConfig: { EndpointsConfig: { [m1.h.bridge]: { IPAMConfig: { IPv4Address: source } } } },
    });
    await client.start();
    await client.wait();
    const { stdout } = await containerOutput(client);
    // m2's workload sees m1's workload's own container IP: routed over the tunnel, not NATed.
    expect(
      stdout.trim(),
      `m1:\n${m1.h.logs.join('').slice(-3000)}\nm2:\n${m2.h.logs.join('').slice(-3000)}`,
    ).toBe(source);
  }, 300_000);
});
