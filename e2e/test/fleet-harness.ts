/**
 * Machines of a local fleet for e2e tests: each a netns host on one LAN with its own dockerd (the
 * images loaded once), its own ployzd inside the netns as on a real host, and its data plane.
 * `bootFleet` makes an initialised first machine and joins the others with invites from it.
 * Needs root and the images (bash scripts/images.sh).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MachineListEntry } from '@ployz/protocol';
import {
  containerOutput,
  createNetnsHost,
  createNetnsLan,
  type NetnsDockerd,
  type NetnsHost,
  type NetnsLan,
} from '@ployz/testkit';
import type { MachineRecord } from '@ployz/types';
import { DaemonHarness } from './daemon-harness.ts';
import { gatewayGet } from './deploy-harness.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLOYZD = join(ROOT, 'apps/ployzd/src/main.ts');
export const WG_PORT = 51820;
export const JOIN_PORT = 51821;
export const ECHO_PORT = 8080;

export interface Machine {
  name: string;
  host: NetnsHost;
  dockerd: NetnsDockerd;
  h: DaemonHarness;
  ployzd: ChildProcess | null;
  lan: string;
}

export async function startMachine(lan: NetnsLan, name: string): Promise<Machine> {
  const host = await createNetnsHost(`fleet-${name}`, { lan });
  const dockerd = await host.startDockerd();
  const h = await DaemonHarness.create();
  await dockerd.loadImages([...Object.values(h.images), 'ployz/hello:latest']);
  for (const [c, id] of Object.entries(h.images))
    await dockerd.docker.getImage(id).tag({ repo: `ployz/${c}`, tag: 'latest' });
  return { name, host, dockerd, h, ployzd: null, lan: host.lanAddress ?? '' };
}

/** ployzd inside the machine's netns; `subnet` pinned only on the first machine (a joiner gets one). */
export async function startPloyzd(
  m: Machine,
  pinSubnet: boolean,
  h: DaemonHarness = m.h,
): Promise<ChildProcess> {
  const { host, dockerd } = m;
  const args = [
    '--conditions=ployz-source',
    PLOYZD,
    'run',
    ...['--state-dir', h.stateDir, '--socket-path', h.socket, '--container-prefix', h.prefix],
    ...['--bridge-name', h.bridge, '--docker-socket', dockerd.socketPath],
    ...(pinSubnet ? ['--subnet', h.subnet] : []),
    ...['--gateway-port', String(h.gatewayPort), '--gateway-host-ip', host.address],
    ...['--gateway-https-port', String(h.gatewayHttpsPort)],
    ...['--wireguard-port', String(WG_PORT), '--lan-address', m.lan, '--join-port', String(JOIN_PORT)],
    // Never a public CA from a test: a test that orders certificates names its own directory
    // (Pebble) in the harness's extraArgs.
    ...(h.extraArgs.includes('--acme-directory') ? [] : ['--acme-directory', 'off']),
    ...Object.entries(h.images).flatMap(([c, id]) => [`--image-${c}`, id]),
    ...h.extraArgs,
  ];
  const proc = host.spawn(process.execPath, args);
  proc.stdout?.on('data', (d: Buffer) => h.logs.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => h.logs.push(d.toString()));
  if (h === m.h) m.ployzd = proc;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`ployzd on ${m.name} exited: ${h.logs.join('')}`);
    if (existsSync(h.socket) && (await h.status()) !== null) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ployzd on ${m.name} did not answer: ${h.logs.join('')}`);
}

export async function stopPloyzd(proc: ChildProcess | null | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await exited;
}

export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

export async function wgPeers(m: Machine): Promise<string[]> {
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

export async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true }).catch(() => [])).sort();
}

/** `machine ls --json` on `m`: the stored records and, apart, what is live now. */
export async function listed(m: Machine): Promise<(MachineRecord & { live: MachineListEntry['live'] })[]> {
  return ((await m.h.ctl('machine', 'ls')).json as { machines: MachineListEntry[] }).machines;
}

export async function records(m: Machine): Promise<MachineRecord[]> {
  return (await listed(m)).map(({ live: _live, ...record }) => record);
}

export function errorCode(r: { json: unknown }): string | undefined {
  return (r.json as { error?: { code?: string } } | null)?.error?.code;
}

/** A workload on `from` fetches the echo server at `target` (container IP); prints what it answered. */
export async function fetchFrom(
  from: Machine,
  name: string,
  source: string,
  target: string,
): Promise<string> {
  const client = await from.dockerd.docker.createContainer({
    name,
    Image: 'ployz/hello:latest',
    Entrypoint: [
      'node',
      '-e',
      `(async()=>{for(let i=0;i<60;i++){try{console.log(await (await fetch('http://${target}:${ECHO_PORT}/',{signal:AbortSignal.timeout(2000)})).text());return}catch(e){await new Promise(r=>setTimeout(r,1000))}}console.log('unreachable')})()`,
    ],
    HostConfig: { NetworkMode: from.h.bridge },
    NetworkingConfig: { EndpointsConfig: { [from.h.bridge]: { IPAMConfig: { IPv4Address: source } } } },
  });
  await client.start();
  await client.wait();
  return (await containerOutput(client)).stdout.trim();
}

/** Answers each request with the caller's address as this server sees it. */
export async function echoOn(m: Machine, address: string): Promise<void> {
  const echo = await m.dockerd.docker.createContainer({
    name: 'fleet-echo',
    Image: 'ployz/hello:latest',
    Entrypoint: [
      'node',
      '-e',
      `require('http').createServer((q,s)=>s.end(String(q.socket.remoteAddress).replace(/^::ffff:/,''))).listen(${ECHO_PORT})`,
    ],
    HostConfig: { NetworkMode: m.h.bridge },
    NetworkingConfig: { EndpointsConfig: { [m.h.bridge]: { IPAMConfig: { IPv4Address: address } } } },
  });
  await echo.start();
}

export function host16(subnet: string, n = 16): string {
  return subnet.replace(/\.0\/24$/, `.${n}`);
}

/** Takes `m` off the LAN (its `lan0` down) with every process running; `heal` brings it back. */
export async function cut(m: Machine): Promise<void> {
  await m.host.run('ip', ['link', 'set', 'lan0', 'down']);
}

export async function heal(m: Machine): Promise<void> {
  await m.host.run('ip', ['link', 'set', 'lan0', 'up']);
}

/** Every machine's last log lines, for assertion messages. */
export function fleetLogs(machines: readonly Machine[], chars = 3000): string {
  return machines.map((m) => `${m.name}:\n${m.h.logs.join('').slice(-chars)}`).join('\n');
}

export interface Fleet extends AsyncDisposable {
  readonly lan: NetnsLan;
  readonly machines: readonly Machine[];
  destroy(): Promise<void>;
}

/**
 * `names.length` machines on one LAN: the first initialised (installation of its harness), the
 * others joined with invites from it, one after the other; resolves once every machine reads every
 * record from the one store and wg0 on each carries every other machine's key.
 */
export interface BootOptions {
  /** Runs once every machine exists (netns, dockerd, harness ports), before any ployzd starts: e.g. to set a machine's `h.extraArgs`. */
  beforePloyzd?: (machines: readonly Machine[]) => Promise<void>;
}

export async function bootFleet(
  label: string,
  names: readonly string[],
  options: BootOptions = {},
): Promise<Fleet> {
  const lan = await createNetnsLan(label);
  const machines: Machine[] = [];
  const destroy = async () => {
    await Promise.all(machines.map((m) => stopPloyzd(m.ployzd)));
    await Promise.all(machines.map((m) => m.host.destroy()));
    await lan.destroy();
    await Promise.all(machines.map((m) => m.h[Symbol.asyncDispose]()));
  };
  try {
    machines.push(...(await Promise.all(names.map((n) => startMachine(lan, n)))));
    const [first, ...rest] = machines;
    if (first === undefined) throw new Error('bootFleet needs at least one machine');
    await options.beforePloyzd?.(machines);
    await Promise.all(machines.map((m) => startPloyzd(m, m === first)));
    const init = await first.h.ctl(
      'machine',
      'init',
      '--id',
      first.name,
      '--installation',
      first.h.installation,
    );
    if (init.code !== 0) throw new Error(`machine init on ${first.name}: ${init.stdout}${init.stderr}`);
    for (const m of rest) {
      const invite = await until(`an invite from ${first.name}`, 120_000, async () => {
        const r = await first.h.ctl('machine', 'invite', '--ttl', '10m');
        return r.code === 0 ? (r.json as { token: string }) : null;
      });
      const joined = await m.h.ctl('machine', 'join', invite.token, '--id', m.name);
      if (joined.code !== 0) throw new Error(`machine join on ${m.name}: ${joined.stdout}${joined.stderr}`);
    }
    const ids = names.slice().sort().join();
    for (const m of machines) {
      await until(`${m.name} reads every record`, 90_000, async () =>
        (await records(m).catch((): MachineRecord[] => []))
          .map((r) => r.id)
          .sort()
          .join() === ids
          ? true
          : null,
      );
    }
    const all = await records(first);
    for (const m of machines) {
      const others = all.filter((r) => r.id !== m.name).map((r) => r.public_key);
      await until(`${m.name} peers with every machine`, 90_000, async () => {
        const peers = await wgPeers(m).catch((): string[] => []);
        return others.every((k) => peers.includes(k)) ? true : null;
      });
    }
  } catch (error) {
    await destroy();
    throw new Error(`${(error as Error).message}\n${fleetLogs(machines)}`);
  }
  return { lan, machines, destroy, [Symbol.asyncDispose]: destroy };
}

/**
 * The machines whose instances answered through `via`'s gateway for `host` (hello's answer names
 * its container's hostname; `hostnames` maps those to machines), after at most `tries` requests
 * or once `want` machines answered.
 */
export async function machinesAnswering(
  via: Machine,
  host: string,
  hostnames: ReadonlyMap<string, string>,
  want: number,
  tries = 60,
): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < tries && seen.size < want; i++) {
    const r = await gatewayGet({
      host: via.host.address,
      port: via.h.gatewayPort,
      path: '/',
      hostHeader: host,
      timeoutMs: 5000,
    }).catch(() => ({ status: 0, body: '' }));
    const from = /\) from (\S+)\s*$/.exec(r.body)?.[1];
    if (r.status === 200 && from !== undefined) seen.add(hostnames.get(from) ?? `unknown ${from}`);
  }
  return [...seen].sort();
}

export interface Answer {
  at: number;
  ok: boolean;
  /** The container that answered (hello's "… from <hostname>"), or the failure. */
  from: string;
}

/** One GET of hello through `m`'s gateway; a failure is status 0 with its message as the body. */
export function askGateway(
  m: Machine,
  hostname: string,
  timeoutMs: number,
): Promise<{ status: number; body: string }> {
  return gatewayGet({
    host: m.host.address,
    port: m.h.gatewayPort,
    path: '/',
    hostHeader: hostname,
    timeoutMs,
  }).catch((e: Error) => ({ status: 0, body: e.message }));
}

/** `<version>@<hostname>` of the instance that wrote hello's answer (hostnames repeat per slot). */
export function answerFrom(body: string): string | undefined {
  const m = /\(version (\S+)\) from (\S+)\s*$/.exec(body);
  return m ? `${m[1]}@${m[2]}` : undefined;
}

/** A closed request loop (`concurrency` clients) on `m`'s gateway for `hostname` until stopped. */
export function requestLoop(m: Machine, hostname: string, concurrency = 4) {
  const answers: Answer[] = [];
  const started = Date.now();
  let running = true;
  const clients = Array.from({ length: concurrency }, async () => {
    while (running) {
      const at = Date.now() - started;
      const r = await askGateway(m, hostname, 10_000);
      const from = answerFrom(r.body);
      answers.push({ at, ok: r.status === 200 && from !== undefined, from: from ?? `${r.status} ${r.body}` });
    }
  });
  return {
    answers,
    since: () => Date.now() - started,
    async stop(): Promise<Answer[]> {
      running = false;
      await Promise.all(clients);
      return answers;
    },
  };
}
