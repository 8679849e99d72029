/**
 * Network-namespace "hosts" for multi-host tests on one machine (needs root):
 *
 *   await using host = await createNetnsHost('node-a');
 *   await host.run('ping', ['-c1', host.hostAddress]);    // the netns reaches the machine over its veth
 *   const dockerd = await host.startDockerd();             // a second Docker engine living in the netns
 *
 * Each host gets a netns `pzt-<slot>`, a veth pair (root side `pzt<slot>h`, netns side `eth0`) with a
 * /30 from 10.231.0.0/16 (machine side .1, netns side .2), and a default route via the machine side.
 * Hosts that must reach each other directly share a LAN (`createNetnsLan()`): a bridge in its own
 * netns, each host attached as `lan0` with an address from a /24 of 10.232.0.0/16.
 * Slots are claimed with an atomic mkdir under /run/ployz-testkit/slots, so concurrent test processes
 * never collide; a slot whose owner process is dead is reclaimed (and its leftovers removed).
 * Dispose kills every process started in the netns (tracked or not), stops its dockerds, deletes the
 * netns and the veth, and frees the slot: nothing outlives the test.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { stopChild } from './child.ts';
import { dockerClient, waitForDocker } from './docker.ts';

const SLOT_DIR = '/run/ployz-testkit/slots';
const SLOT_COUNT = 16_384; // /30s in 10.231.0.0/16
const LAN_DIR = '/run/ployz-testkit/lans';
const LAN_COUNT = 256; // /24s in 10.232.0.0/16

/**
 * A shared Ethernet segment for several netns hosts: a bridge inside its own network namespace
 * (so the machine's firewall never sees the traffic), with a /24 from 10.232.0.0/16. Hosts created
 * with `{ lan }` get a `lan0` interface on it and reach each other directly.
 */
export interface NetnsLan extends AsyncDisposable {
  /** The namespace holding the bridge `br0`. */
  readonly name: string;
  /** e.g. 10.232.17.0/24 */
  readonly cidr: string;
  /** The next unused host address on this segment (e.g. 10.232.17.1). */
  allocateAddress(): string;
  destroy(): Promise<void>;
}

export interface NetnsHostOptions {
  /** Also attach the host to this segment, as `lan0`. */
  lan?: NetnsLan;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface NetnsDockerd extends AsyncDisposable {
  readonly socketPath: string;
  readonly dataRoot: string;
  readonly pid: number;
  readonly docker: Docker;
  /** Copies images from the machine's engine into this one (`docker save | docker load`). */
  loadImages(refs: string[], from?: Docker): Promise<void>;
  stop(): Promise<void>;
}

export interface NetnsHost extends AsyncDisposable {
  /** Network namespace name; its handle is `path`. */
  readonly name: string;
  readonly path: string;
  /** The root-namespace end of the veth and its IPv4 address (the machine, seen from the netns). */
  readonly hostInterface: string;
  readonly hostAddress: string;
  /** This host's address on its `eth0`. */
  readonly address: string;
  readonly prefixLength: number;
  /** This host's address on `lan0` when it was created on a LAN. */
  readonly lanAddress: string | undefined;
  /** Runs a command inside the netns and returns its exit code and output (never throws on exit code). */
  exec(command: string, args?: string[], options?: ExecOptions): Promise<ExecResult>;
  /** Like exec, but throws when the command exits non-zero. */
  run(command: string, args?: string[], options?: ExecOptions): Promise<string>;
  /** Starts a long-running process inside the netns; it is killed on teardown at the latest. */
  spawn(command: string, args?: string[], options?: { env?: NodeJS.ProcessEnv }): ChildProcess;
  /** Starts a dockerd whose network namespace is this host's, with its own data/exec roots and socket. */
  startDockerd(options?: { timeoutMs?: number }): Promise<NetnsDockerd>;
  destroy(): Promise<void>;
}

/**
 * The command line of a test dockerd that owns everything under `dir` (data, exec root, pidfile,
 * socket `dir/docker.sock`) and keeps its cgroups and containerd namespaces apart under `name`.
 */
export function dockerdArgs(dir: string, name: string): string[] {
  return [
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'exec'),
    '--pidfile',
    join(dir, 'docker.pid'),
    '-H',
    `unix://${join(dir, 'docker.sock')}`,
    '--cgroup-parent',
    `ployz-test-${name}`,
    '--containerd-namespace',
    `ployz-${name}`,
    '--containerd-plugins-namespace',
    `ployz-${name}-plugins`,
  ];
}

function execFileResult(command: string, args: string[], options: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: options.timeoutMs ?? 30_000, env: options.env ?? process.env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          // Spawn failure or timeout (killed): not an exit code.
          reject(new Error(`${command} ${args.join(' ')}: ${error.message}`));
          return;
        }
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr });
      },
    );
  });
}

async function must(command: string, args: string[]): Promise<string> {
  const r = await execFileResult(command, args);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function slotNames(slot: number) {
  const base = (10 << 24) | (231 << 16) | (slot * 4);
  const ip = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
  return {
    netns: `pzt-${slot}`,
    hostIf: `pzt${slot}h`,
    peerIf: `pzt${slot}n`,
    lanIf: `pzt${slot}l`,
    lanPeerIf: `pzt${slot}m`,
    hostAddress: ip(base + 1),
    address: ip(base + 2),
  };
}

/** Kills every process whose network namespace is `name`, then deletes the netns and the veth. */
async function removeNetns(name: string, hostIf: string): Promise<void> {
  if (existsSync(`/var/run/netns/${name}`)) {
    for (let round = 0; round < 20; round++) {
      const pids = (await execFileResult('ip', ['netns', 'pids', name])).stdout
        .split(/\s+/)
        .map(Number)
        .filter((p) => p > 0);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, round === 0 ? 'SIGTERM' : 'SIGKILL');
        } catch {}
      }
      await new Promise((r) => setTimeout(r, round === 0 ? 500 : 100));
    }
    await execFileResult('ip', ['netns', 'del', name]);
  }
  // Deleting the netns destroys its veth end and so the pair; this covers a half-made pair.
  await execFileResult('ip', ['link', 'del', hostIf]);
}

/**
 * Claims a free index in `dir` (0..count-1) with an atomic mkdir; an index whose owner process is
 * dead is reclaimed after `reclaim` removed its leftovers.
 */
async function claimIndex(
  dir: string,
  count: number,
  label: string,
  reclaim: (index: number) => Promise<void>,
): Promise<number> {
  await mkdir(dir, { recursive: true });
  const start = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const index = (start + i) % count;
    const slotDir = join(dir, String(index));
    try {
      await mkdir(slotDir);
    } catch {
      // Taken: reclaim it when its owner is dead (a test process that was killed).
      const owner = Number(await readFile(join(slotDir, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && !alive(owner)) {
        await reclaim(index);
        await rm(slotDir, { recursive: true, force: true });
      }
      continue;
    }
    await writeFile(join(slotDir, 'pid'), String(process.pid));
    await writeFile(join(slotDir, 'label'), label);
    return index;
  }
  throw new Error(`no free test network slot in ${dir} (all ${count} in use)`);
}

/** Removes everything a host slot may have left: processes, netns, veths, dockerd directories. */
async function reclaimHostSlot(slot: number): Promise<void> {
  const n = slotNames(slot);
  await removeNetns(n.netns, n.hostIf);
  await execFileResult('ip', ['link', 'del', n.lanIf]);
  const dirs = await readFile(join(SLOT_DIR, String(slot), 'dirs'), 'utf8').catch(() => '');
  for (const dir of dirs.split('\n').filter(Boolean)) {
    await unmountUnder(dir);
    await rm(dir, { recursive: true, force: true });
  }
}

function claimSlot(label: string): Promise<number> {
  return claimIndex(SLOT_DIR, SLOT_COUNT, label, reclaimHostSlot);
}

async function sweepDir(dir: string, reclaim: (index: number) => Promise<void>): Promise<number> {
  let swept = 0;
  const entries = await readdir(dir).catch(() => []);
  for (const entry of entries) {
    const slotDir = join(dir, entry);
    const owner = Number(await readFile(join(slotDir, 'pid'), 'utf8').catch(() => '0'));
    if (owner > 0 && alive(owner)) continue;
    if (owner === 0) {
      // Being claimed right now (mkdir done, pid not yet written) or a broken entry: leave it
      // unless it is old.
      const age = Date.now() - (await stat(slotDir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age < 60_000) continue;
    }
    await reclaim(Number(entry));
    await rm(slotDir, { recursive: true, force: true });
    swept++;
  }
  return swept;
}

/**
 * Removes netns hosts and LANs (with their processes, veths and dockerd directories) whose owning
 * test process is dead — what a killed or timed-out test run left behind. Runs on every create.
 */
export async function sweepNetnsOrphans(): Promise<number> {
  return (
    (await sweepDir(SLOT_DIR, reclaimHostSlot)) +
    (await sweepDir(LAN_DIR, (i) => removeNetns(`pzl-${i}`, `pzl${i}x`)))
  );
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const target of mounts) await execFileResult('umount', ['-l', target]);
}

/** `label` names the host in the slot directory (for whoever debugs a leftover). */
export async function createNetnsHost(label = 'host', options: NetnsHostOptions = {}): Promise<NetnsHost> {
  if (process.getuid?.() !== 0) throw new Error('network-namespace hosts need root');
  await sweepNetnsOrphans();
  const slot = await claimSlot(label);
  const n = slotNames(slot);
  const path = `/var/run/netns/${n.netns}`;
  const children = new Set<ChildProcess>();
  const dockerds = new Set<NetnsDockerd>();
  let destroyed = false;
  let lanAddress: string | undefined;

  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await Promise.all([...dockerds].map((d) => d.stop().catch(() => {})));
    await Promise.all([...children].map((c) => stopChild(c)));
    await removeNetns(n.netns, n.hostIf);
    await execFileResult('ip', ['link', 'del', n.lanIf]); // a half-made LAN pair, if any
    await rm(join(SLOT_DIR, String(slot)), { recursive: true, force: true });
  };

  try {
    await removeNetns(n.netns, n.hostIf); // leftovers of a crashed owner of this slot
    await must('ip', ['netns', 'add', n.netns]);
    await must('ip', ['link', 'add', n.hostIf, 'type', 'veth', 'peer', 'name', n.peerIf]);
    await must('ip', ['link', 'set', n.peerIf, 'netns', n.netns]);
    await must('ip', ['address', 'add', `${n.hostAddress}/30`, 'dev', n.hostIf]);
    await must('ip', ['link', 'set', n.hostIf, 'up']);
    await must('ip', ['-n', n.netns, 'link', 'set', n.peerIf, 'name', 'eth0']);
    await must('ip', ['-n', n.netns, 'address', 'add', `${n.address}/30`, 'dev', 'eth0']);
    await must('ip', ['-n', n.netns, 'link', 'set', 'eth0', 'up']);
    await must('ip', ['-n', n.netns, 'link', 'set', 'lo', 'up']);
    await must('ip', ['-n', n.netns, 'route', 'add', 'default', 'via', n.hostAddress]);
    if (options.lan) {
      lanAddress = options.lan.allocateAddress();
      await must('ip', ['link', 'add', n.lanIf, 'type', 'veth', 'peer', 'name', n.lanPeerIf]);
      await must('ip', ['link', 'set', n.lanIf, 'netns', options.lan.name]);
      await must('ip', ['-n', options.lan.name, 'link', 'set', n.lanIf, 'master', 'br0', 'up']);
      await must('ip', ['link', 'set', n.lanPeerIf, 'netns', n.netns]);
      await must('ip', ['-n', n.netns, 'link', 'set', n.lanPeerIf, 'name', 'lan0']);
      await must('ip', ['-n', n.netns, 'address', 'add', `${lanAddress}/24`, 'dev', 'lan0']);
      await must('ip', ['-n', n.netns, 'link', 'set', 'lan0', 'up']);
    }
  } catch (error) {
    await destroy();
    throw error;
  }

  const nsenterArgs = (command: string, args: string[]) => [`--net=${path}`, '--', command, ...args];

  const host: NetnsHost = {
    name: n.netns,
    path,
    hostInterface: n.hostIf,
    hostAddress: n.hostAddress,
    address: n.address,
    prefixLength: 30,
    get lanAddress() {
      return lanAddress;
    },
    exec(command, args = [], options = {}) {
      return execFileResult('nsenter', nsenterArgs(command, args), options);
    },
    async run(command, args = [], options = {}) {
      const r = await host.exec(command, args, options);
      if (r.code !== 0) {
        throw new Error(`${command} ${args.join(' ')} failed in ${n.netns} (${r.code}): ${r.stderr.trim()}`);
      }
      return r.stdout;
    },
    spawn(command, args = [], options = {}) {
      const child = spawn('nsenter', nsenterArgs(command, args), {
        env: options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    async startDockerd(options = {}) {
      const dir = await mkdtemp(join(tmpdir(), `ployz-dockerd-${n.netns}-`));
      // Recorded so that a sweep can clean up after a test process that died mid-run.
      await appendFile(join(SLOT_DIR, String(slot), 'dirs'), `${dir}\n`);
      const socketPath = join(dir, 'docker.sock');
      const dataRoot = join(dir, 'data');
      // `ip netns exec` would remount /sys and hide the cgroup mounts dockerd needs; nsenter --net
      // changes only the network namespace.
      const child = host.spawn('dockerd', dockerdArgs(dir, n.netns));
      let log = '';
      const keep = (b: Buffer) => {
        log = (log + b.toString()).slice(-4000);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
      const docker = dockerClient(socketPath);
      const exited = new Promise<never>((_, reject) =>
        child.once('exit', (code) => reject(new Error(`dockerd in ${n.netns} exited (${code}): ${log}`))),
      );
      exited.catch(() => {});
      try {
        await Promise.race([waitForDocker(docker, options.timeoutMs ?? 60_000), exited]);
      } catch (error) {
        await stopChild(child);
        await unmountUnder(dir);
        await rm(dir, { recursive: true, force: true });
        throw error;
      }
      const stop = async () => {
        if (!dockerds.has(engine)) return;
        dockerds.delete(engine);
        // Containers first, so their shims do not linger after the daemon is gone.
        const list = await docker.listContainers({ all: true }).catch(() => []);
        await Promise.all(
          list.map((c) =>
            docker
              .getContainer(c.Id)
              .remove({ force: true })
              .catch(() => {}),
          ),
        );
        await stopChild(child, 15_000);
        // dockerd leaves mounts under its roots (overlays, the nsfs handle in exec/netns); unmount
        // them, deepest first, before removing the directory.
        await unmountUnder(dir);
        await rm(dir, { recursive: true, force: true });
      };
      const engine: NetnsDockerd = {
        socketPath,
        dataRoot,
        get pid() {
          return child.pid ?? 0;
        },
        docker,
        async loadImages(refs, from = dockerClient()) {
          for (const ref of refs) {
            const stream = await from.getImage(ref).get();
            const response = await docker.loadImage(stream);
            await new Promise<void>((resolve, reject) => {
              response.on('error', reject);
              response.on('end', () => resolve());
              response.resume();
            });
          }
        },
        stop,
        [Symbol.asyncDispose]: stop,
      };
      dockerds.add(engine);
      return engine;
    },
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
  return host;
}

/** Creates a shared segment; dispose it after the hosts on it (their `lan0` goes with it). */
export async function createNetnsLan(label = 'lan'): Promise<NetnsLan> {
  if (process.getuid?.() !== 0) throw new Error('network-namespace LANs need root');
  await sweepNetnsOrphans();
  const lanName = (i: number) => `pzl-${i}`;
  const index = await claimIndex(LAN_DIR, LAN_COUNT, label, (i) => removeNetns(lanName(i), `pzl${i}x`));
  const name = lanName(index);
  let next = 1;
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await removeNetns(name, `pzl${index}x`);
    await rm(join(LAN_DIR, String(index)), { recursive: true, force: true });
  };
  try {
    await removeNetns(name, `pzl${index}x`);
    await must('ip', ['netns', 'add', name]);
    await must('ip', ['-n', name, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', name, 'link', 'set', 'br0', 'up']);
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    name,
    cidr: `10.232.${index}.0/24`,
    allocateAddress() {
      if (next > 254) throw new Error(`LAN ${name} has no free address left`);
      return `10.232.${index}.${next++}`;
    },
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
}
