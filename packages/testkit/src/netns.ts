/**
 * Network-namespace "hosts" for multi-host tests on one machine (needs root):
 *
 *   await using host = await createNetnsHost('node-a');
 *   await host.run('ping', ['-c1', host.hostAddress]);    // the netns reaches the machine over its veth
 *   const dockerd = await host.startDockerd();             // a second Docker engine living in the netns
 *
 * Each host gets a netns `pzt-<slot>`, a veth pair (root side `pzt<slot>h`, netns side `eth0`) with a
 * /30 from 10.231.0.0/16 (machine side .1, netns side .2), and a default route via the machine side.
 * Slots are claimed with an atomic mkdir under /run/ployz-testkit/slots, so concurrent test processes
 * never collide; a slot whose owner process is dead is reclaimed (and its leftovers removed).
 * Dispose kills every process started in the netns (tracked or not), stops its dockerds, deletes the
 * netns and the veth, and frees the slot: nothing outlives the test.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { dockerClient, waitForDocker } from './docker.ts';

const SLOT_DIR = '/run/ployz-testkit/slots';
const SLOT_COUNT = 16_384; // /30s in 10.231.0.0/16

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

async function claimSlot(label: string): Promise<number> {
  await mkdir(SLOT_DIR, { recursive: true });
  const start = Math.floor(Math.random() * SLOT_COUNT);
  for (let i = 0; i < SLOT_COUNT; i++) {
    const slot = (start + i) % SLOT_COUNT;
    const dir = join(SLOT_DIR, String(slot));
    try {
      await mkdir(dir);
    } catch {
      // Taken: reclaim it when its owner is dead (a test process that was killed).
      const owner = Number(await readFile(join(dir, 'pid'), 'utf8').catch(() => '0'));
      if (owner > 0 && !alive(owner)) {
        const n = slotNames(slot);
        await removeNetns(n.netns, n.hostIf);
        await rm(dir, { recursive: true, force: true });
      }
      continue;
    }
    await writeFile(join(dir, 'pid'), String(process.pid));
    await writeFile(join(dir, 'label'), label);
    return slot;
  }
  throw new Error('no free netns test slot (all 16384 in use)');
}

async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((target) => target === dir || target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const target of mounts) await execFileResult('umount', ['-l', target]);
}

function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `label` names the host in the slot directory (for whoever debugs a leftover). */
export async function createNetnsHost(label = 'host'): Promise<NetnsHost> {
  if (process.getuid?.() !== 0) throw new Error('network-namespace hosts need root');
  const slot = await claimSlot(label);
  const n = slotNames(slot);
  const path = `/var/run/netns/${n.netns}`;
  const children = new Set<ChildProcess>();
  const dockerds = new Set<NetnsDockerd>();
  let destroyed = false;

  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await Promise.all([...dockerds].map((d) => d.stop().catch(() => {})));
    await Promise.all([...children].map((c) => stopChild(c)));
    await removeNetns(n.netns, n.hostIf);
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
      const socketPath = join(dir, 'docker.sock');
      const dataRoot = join(dir, 'data');
      // `ip netns exec` would remount /sys and hide the cgroup mounts dockerd needs; nsenter --net
      // changes only the network namespace.
      const child = host.spawn('dockerd', [
        '--data-root',
        dataRoot,
        '--exec-root',
        join(dir, 'exec'),
        '--pidfile',
        join(dir, 'docker.pid'),
        '-H',
        `unix://${socketPath}`,
        '--cgroup-parent',
        `ployz-test-${n.netns}`,
        '--containerd-namespace',
        `ployz-${n.netns}`,
        '--containerd-plugins-namespace',
        `ployz-${n.netns}-plugins`,
      ]);
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
