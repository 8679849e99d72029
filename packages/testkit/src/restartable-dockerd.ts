/**
 * A dockerd in a netns host that can be restarted on the same data root, as an `apt upgrade` of
 * docker.io does: SIGTERM (containers stop with it, live-restore off), then start again — the
 * containers come back by their restart policy. Disposal removes every container, stops the
 * engine, unmounts what it left under its directory and removes it.
 */
import type { ChildProcess } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { dockerClient, waitForDocker } from './docker.ts';
import { dockerdArgs, type NetnsHost } from './netns.ts';

export interface RestartableDockerd extends AsyncDisposable {
  readonly socketPath: string;
  readonly docker: Docker;
  /** SIGTERM and wait for exit (containers stop with the engine). */
  stop(): Promise<void>;
  /** Start again on the same data root; resolves once the engine answers. */
  start(): Promise<void>;
  /** Copies images from the machine's engine into this one (`docker save | docker load`). */
  loadImages(refs: string[], from?: Docker): Promise<void>;
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

async function unmountBelow(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((p) => p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) {
    await new Promise<void>((resolve) => execFile('umount', ['-l', p], () => resolve()));
  }
}

export async function startRestartableDockerd(
  host: NetnsHost,
  timeoutMs = 60_000,
): Promise<RestartableDockerd> {
  const dir = await mkdtemp(join(tmpdir(), `ployz-dockerd-r-${host.name}-`));
  const socketPath = join(dir, 'docker.sock');
  const docker = dockerClient(socketPath);
  let child: ChildProcess | null = null;
  const start = async () => {
    const proc = host.spawn('dockerd', dockerdArgs(dir, host.name));
    proc.stdout?.resume();
    proc.stderr?.resume();
    child = proc;
    await waitForDocker(docker, timeoutMs);
  };
  const stop = async () => {
    const proc = child;
    if (proc === null) return;
    child = null;
    proc.kill('SIGTERM');
    await exited(proc, 30_000);
  };
  await start();
  return {
    socketPath,
    docker,
    start,
    stop,
    async loadImages(refs, from = dockerClient()) {
      for (const ref of refs) {
        const response = await docker.loadImage(await from.getImage(ref).get());
        await new Promise<void>((resolve, reject) => {
          response.on('error', reject);
          response.on('end', () => resolve());
          response.resume();
        });
      }
    },
    async [Symbol.asyncDispose]() {
      if (child !== null) {
        for (const c of await docker.listContainers({ all: true }).catch(() => [])) {
          await docker
            .getContainer(c.Id)
            .remove({ force: true })
            .catch(() => {});
        }
      }
      await stop();
      await unmountBelow(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => {});
    },
  };
}
