/**
 * Real storage for volume-driver tests (needs root):
 *
 *   await using pool = await createZfsPool();    // a file-backed zpool; starts zfs-fuse if none runs
 *   await using fs = await createBtrfsLoop();    // mkfs.btrfs on a loop device, mounted in a temp dir
 *
 * Each fixture makes its own pool or filesystem in a fresh temp directory and removes everything on
 * dispose, even after a failed test: `zpool destroy -f`; umount, `losetup -d`; the temp directory.
 * zfs-fuse is one daemon per machine: a fixture that had to start it records its PID in
 * /run/ployz-testkit/zfs-fuse.pid and stops that PID (only that one) once no pool is left; one that
 * finds a daemon running leaves it alone unless the pidfile says a fixture started it (a crashed run). Pools are created with
 * cachefile=none so a crashed test never leaves a pool the daemon tries to import on its next start.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface ZfsPool extends AsyncDisposable {
  readonly pool: string;
  /** Where the pool's root dataset is mounted. */
  readonly mountpoint: string;
  readonly implementation: 'kernel' | 'zfs-fuse';
  /** The zfs-fuse PID this fixture started, if it had to. */
  readonly startedDaemonPid: number | undefined;
  destroy(): Promise<void>;
}

export interface BtrfsLoop extends AsyncDisposable {
  /** The mounted filesystem's root. */
  readonly path: string;
  readonly device: string;
  destroy(): Promise<void>;
}

export interface StorageFixtureOptions {
  sizeMiB?: number;
}

function run(command: string, args: string[], timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, env: { ...process.env, LC_ALL: 'C' } },
      (error, stdout, stderr) => {
        if (error)
          reject(
            new Error(`${command} ${args.join(' ')}: ${stderr.trim() || error.message}`, { cause: error }),
          );
        else resolve(stdout);
      },
    );
  });
}

async function sparseFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(bytes);
  } finally {
    await handle.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where a fixture records the zfs-fuse it started, so a later run can stop one a crash left behind. */
const ZFS_FUSE_PIDFILE = '/run/ployz-testkit/zfs-fuse.pid';

async function zfsAnswers(): Promise<boolean> {
  return run('zpool', ['list', '-H', '-o', 'name'], 10_000).then(
    () => true,
    () => false,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The PID of a zfs-fuse a test fixture started (recorded in the pidfile) that still runs. */
async function testStartedZfsFuse(): Promise<number | undefined> {
  const pid = Number((await readFile(ZFS_FUSE_PIDFILE, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.startsWith('zfs-fuse\0') || cmdline.includes('/zfs-fuse\0') ? pid : undefined;
}

/** Starts zfs-fuse in the foreground of a child process and waits until `zpool` reaches it. */
async function startZfsFuse(): Promise<number | undefined> {
  const child = spawn('zfs-fuse', ['--no-daemon', '--no-kstat-mount'], { stdio: 'ignore', detached: true });
  child.once('error', () => undefined);
  child.unref();
  for (let i = 0; i < 150; i++) {
    if (await zfsAnswers()) {
      // Exited already: another process started its own daemon first and it answers; not ours.
      if (child.exitCode !== null || child.pid === undefined) return undefined;
      await mkdir(dirname(ZFS_FUSE_PIDFILE), { recursive: true });
      await writeFile(ZFS_FUSE_PIDFILE, `${child.pid}\n`);
      return child.pid;
    }
    if (child.exitCode !== null || child.signalCode !== null) break;
    await sleep(100);
  }
  if (child.pid !== undefined && child.exitCode === null) await stopDaemon(child.pid);
  throw new Error('zfs-fuse did not start (is the zfs-fuse package installed and /dev/fuse present?)');
}

/** SIGTERM to that one PID; zfs-fuse takes a few seconds to sync and exit. */
async function stopDaemon(pid: number): Promise<void> {
  if (!alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  const recorded = (await readFile(ZFS_FUSE_PIDFILE, 'utf8').catch(() => '')).trim();
  if (recorded === String(pid)) await rm(ZFS_FUSE_PIDFILE, { force: true });
}

/** zfs-fuse completes an unmount after the command returns: "busy" for a moment is retried. */
async function retryBusy(action: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await action();
      return;
    } catch (error) {
      if (attempt >= 30 || !/busy/i.test(String(error))) throw error;
      await sleep(Math.min(50 * attempt, 300));
    }
  }
}

export async function createZfsPool(options: StorageFixtureOptions = {}): Promise<ZfsPool> {
  const implementation = existsSync('/dev/zfs') ? 'kernel' : 'zfs-fuse';
  let daemonPid: number | undefined;
  if (await zfsAnswers()) {
    daemonPid = implementation === 'zfs-fuse' ? await testStartedZfsFuse() : undefined;
  } else {
    if (implementation === 'kernel') throw new Error('zpool does not answer on this kernel-ZFS machine');
    daemonPid = await startZfsFuse();
  }
  const dir = await mkdtemp(join(tmpdir(), 'ployz-zfs-'));
  const pool = `pzt-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const image = join(dir, 'pool.img');
  const mountpoint = join(dir, 'mnt');
  let created = false;
  const destroy = async () => {
    const errors: unknown[] = [];
    if (created) {
      await retryBusy(() => run('zpool', ['destroy', '-f', pool])).then(
        () => {
          created = false;
        },
        (e: unknown) => errors.push(e),
      );
    }
    if (!created) await rm(dir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (daemonPid !== undefined) {
      const others = await run('zpool', ['list', '-H', '-o', 'name']).catch(() => '');
      if (others.trim() === '' || others.includes('no pools available')) {
        await stopDaemon(daemonPid);
        daemonPid = undefined;
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up zpool ${pool}`);
  };
  try {
    await sparseFile(image, (options.sizeMiB ?? 128) * 1024 * 1024);
    await run('zpool', ['create', '-o', 'cachefile=none', '-m', mountpoint, pool, image]);
    created = true;
  } catch (error) {
    await destroy().catch(() => undefined);
    throw error;
  }
  return {
    pool,
    mountpoint,
    implementation,
    startedDaemonPid: daemonPid,
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
}

export async function createBtrfsLoop(options: StorageFixtureOptions = {}): Promise<BtrfsLoop> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-btrfs-'));
  const image = join(dir, 'fs.img');
  const path = join(dir, 'mnt');
  let device = '';
  let mounted = false;
  const destroy = async () => {
    const errors: unknown[] = [];
    if (mounted) {
      await run('umount', [path]).then(
        () => {
          mounted = false;
        },
        (e: unknown) => errors.push(e),
      );
    }
    if (device && !mounted) {
      await run('losetup', ['-d', device]).then(
        () => {
          device = '';
        },
        (e: unknown) => errors.push(e),
      );
    }
    if (!mounted) await rm(dir, { recursive: true, force: true }).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up the btrfs loop in ${dir}`);
  };
  try {
    await sparseFile(image, (options.sizeMiB ?? 256) * 1024 * 1024);
    await run('mkfs.btrfs', ['-q', image]);
    device = (await run('losetup', ['--find', '--show', image])).trim();
    await mkdir(path);
    await run('mount', [device, path]);
    mounted = true;
  } catch (error) {
    await destroy().catch(() => undefined);
    throw error;
  }
  return {
    path,
    get device() {
      return device;
    },
    destroy,
    [Symbol.asyncDispose]: destroy,
  };
}
