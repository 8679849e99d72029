/**
 * Docker for tests: a dockerode client pinned to API v1.41 (the Debian engine is 20.10), a wait
 * until the engine answers, and a per-test scope whose label goes on everything the test creates
 * and that removes all of it on dispose, also when the test failed:
 *
 *   await using scope = await dockerScope('gateway-adopt');
 *   const c = await scope.run({ Image: 'ployz/hello', Env: ['PORT=8080'] });
 *   // ... throw, or not: on leaving the block every container/network/volume labelled
 *   // `ployz.test=<scope.id>` is force-removed.
 *
 * Containers also carry `ployz.test.owner-pid`, so `sweepOrphans()` (run by every `dockerScope()`)
 * removes what a test process that was killed (and so never disposed) left behind, without touching
 * anyone else's containers.
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';

export const TEST_LABEL = 'ployz.test';
export const TEST_OWNER_PID_LABEL = 'ployz.test.owner-pid';
export const DOCKER_API_VERSION = 'v1.41';

export interface DockerConnectOptions {
  /** Engine socket; default `$PLOYZ_DOCKER_SOCKET` or /var/run/docker.sock. */
  socketPath?: string;
  /** How long to wait for the engine to answer a ping; default 30 s. */
  timeoutMs?: number;
}

export interface CleanupReport {
  containers: number;
  networks: number;
  volumes: number;
}

export interface DockerScope extends AsyncDisposable {
  readonly docker: Docker;
  /** The value of the `ployz.test` label on everything this scope creates. */
  readonly id: string;
  /** Labels to put on anything the test creates itself (e.g. through code under test). */
  readonly labels: Readonly<Record<string, string>>;
  /** Creates and starts a container carrying the scope's labels (merged with `options.Labels`). */
  run(options: Docker.ContainerCreateOptions): Promise<Docker.Container>;
  /** Creates a network carrying the scope's labels. */
  createNetwork(options: Docker.NetworkCreateOptions): Promise<Docker.Network>;
  /** Force-removes every container, network and volume carrying the scope's label. */
  cleanup(): Promise<CleanupReport>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function statusCode(error: unknown): number | undefined {
  if (typeof error === 'object' && error !== null && 'statusCode' in error) {
    const code = (error as { statusCode: unknown }).statusCode;
    return typeof code === 'number' ? code : undefined;
  }
  return undefined;
}

/** Runs `action`, treating "no such object" (404) and "removal already in progress" (409) as done. */
async function ignoreGone(action: () => Promise<unknown>): Promise<boolean> {
  try {
    await action();
    return true;
  } catch (error) {
    const code = statusCode(error);
    if (code === 404 || code === 409) return false;
    throw error;
  }
}

export function dockerClient(socketPath?: string): Docker {
  return new Docker({
    socketPath: socketPath ?? process.env.PLOYZ_DOCKER_SOCKET ?? '/var/run/docker.sock',
    version: DOCKER_API_VERSION,
  });
}

/** Waits until the engine answers a ping; throws with the last error after `timeoutMs`. */
export async function waitForDocker(docker: Docker, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      await docker.ping();
      return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const reason = last instanceof Error ? last.message : String(last);
      throw new Error(
        `no Docker engine answered within ${timeoutMs} ms (${reason}); start one with: bash scripts/setup.sh`,
      );
    }
    await sleep(100);
  }
}

/** A client for the engine on `socketPath`, once it answers. */
export async function connectDocker(options: DockerConnectOptions = {}): Promise<Docker> {
  const docker = dockerClient(options.socketPath);
  await waitForDocker(docker, options.timeoutMs);
  return docker;
}

/** Throws a message that says how to get `ref` when the image is not present locally. */
export async function requireImage(docker: Docker, ref: string): Promise<void> {
  const present = await docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      (error: unknown) => {
        if (statusCode(error) === 404) return false;
        throw error;
      },
    );
  if (!present) throw new Error(`image ${ref} is not built; build the images with: bash scripts/images.sh`);
}

/**
 * Force-removes every container (with its anonymous volumes), network and volume matching a label
 * filter: `key=value`, or `key` for any value.
 */
export async function removeByLabel(docker: Docker, label: string): Promise<CleanupReport> {
  const filters = { label: [label] };
  const report: CleanupReport = { containers: 0, networks: 0, volumes: 0 };
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map(async (c) => {
      if (await ignoreGone(() => docker.getContainer(c.Id).remove({ force: true, v: true }))) {
        report.containers++;
      }
    }),
  );
  // Networks go after their containers (a network with endpoints cannot be removed).
  const networks = await docker.listNetworks({ filters });
  for (const n of networks) {
    if (await ignoreGone(() => docker.getNetwork(n.Id).remove())) report.networks++;
  }
  const volumes = await docker.listVolumes({ filters });
  for (const v of volumes.Volumes ?? []) {
    if (await ignoreGone(() => docker.getVolume(v.Name).remove({ force: true }))) report.volumes++;
  }
  return report;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes test containers whose owning test process is gone (killed before it could dispose its
 * scope). Never touches containers of a live test process or without the test labels.
 */
export async function sweepOrphans(docker: Docker): Promise<CleanupReport> {
  const report: CleanupReport = { containers: 0, networks: 0, volumes: 0 };
  const containers = await docker.listContainers({ all: true, filters: { label: [TEST_OWNER_PID_LABEL] } });
  const dead = new Set<string>();
  for (const c of containers) {
    const pid = Number(c.Labels[TEST_OWNER_PID_LABEL]);
    const scope = c.Labels[TEST_LABEL];
    if (scope && Number.isInteger(pid) && pid > 0 && !alive(pid)) dead.add(scope);
  }
  for (const scope of dead) {
    const r = await removeByLabel(docker, `${TEST_LABEL}=${scope}`);
    report.containers += r.containers;
    report.networks += r.networks;
    report.volumes += r.volumes;
  }
  return report;
}

/** A unique label value: `<name>-<pid>-<random>`, safe for Docker labels and names. */
export function testScopeId(name: string): string {
  const safe = name.replace(/[^A-Za-z0-9_.-]+/g, '-').slice(0, 40) || 'test';
  return `${safe}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** A per-test Docker scope; dispose it (`await using`) to remove everything it labelled. */
export async function dockerScope(name = 'test', options: DockerConnectOptions = {}): Promise<DockerScope> {
  const docker = await connectDocker(options);
  // What killed test processes left behind goes first (their owner pid is dead).
  await sweepOrphans(docker);
  const id = testScopeId(name);
  const labels = { [TEST_LABEL]: id, [TEST_OWNER_PID_LABEL]: String(process.pid) };
  const scope: DockerScope = {
    docker,
    id,
    labels,
    async run(create) {
      const container = await docker.createContainer({ ...create, Labels: { ...create.Labels, ...labels } });
      await container.start();
      return container;
    },
    createNetwork(create) {
      return docker.createNetwork({ ...create, Labels: { ...create.Labels, ...labels } });
    },
    cleanup() {
      return removeByLabel(docker, `${TEST_LABEL}=${id}`);
    },
    async [Symbol.asyncDispose]() {
      await scope.cleanup();
    },
  };
  return scope;
}

/**
 * Splits a non-TTY container's multiplexed log/attach stream (8-byte frame headers: stream 1 =
 * stdout, 2 = stderr, then a big-endian length) into its stdout and stderr text.
 */
export function demuxDockerStream(raw: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const stream = raw[offset];
    const size = raw.readUInt32BE(offset + 4);
    const payload = raw.subarray(offset + 8, offset + 8 + size);
    (stream === 2 ? err : out).push(payload);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** The stdout and stderr a (non-TTY) container has written so far. */
export async function containerOutput(
  container: Docker.Container,
): Promise<{ stdout: string; stderr: string }> {
  const raw = await container.logs({ stdout: true, stderr: true, follow: false });
  return demuxDockerStream(raw);
}
