/**
 * This machine's workload containers on the real Docker engine: start (create + start, never a
 * pull: a deploy has pulled or sent the image at its probe step), readiness (http/tcp from the
 * host over the bridge, exec inside the container), stop (grace, then kill) and remove.
 * Containers without Ployz labels are never touched, even when their name collides. Each new
 * container gets a fixed bridge address: the lowest workload address no container on the bridge
 * holds (running or stopped), picked and claimed one create at a time, so two deploys at once
 * never share one; removing the container releases it.
 */
import { mkdir } from 'node:fs/promises';
import type { DeployReadiness } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerLogLines } from '../ops/log-lines.ts';
import { dockerError, dockerStatus } from '../runtime/docker-errors.ts';
import { pickWorkloadAddress } from './addresses.ts';
import type { Clock } from './clock.ts';
import {
  isWorkloadInstance,
  type WorkloadSettings,
  workloadCreateOptions,
  workloadName,
} from './container.ts';
import { httpProbe, type Probe, tcpProbe, waitUntilReady } from './readiness.ts';
import type { StartedInstance, StartRequest, StopRequest } from './start-request.ts';

const dockerDown = (error: unknown) => dockerError(error);

/** How many of a failed candidate's last log lines its error carries (the deploy removes it). */
const FAILED_START_LOG_LINES = 20;
const LOG_LINE_CHARS = 240;

export class DockerWorkloads {
  readonly #docker: Docker;
  readonly #settings: WorkloadSettings;
  readonly #clock: Clock;
  /** The tail of the create queue: an address is picked and claimed by one create at a time. */
  #claiming: Promise<unknown> = Promise.resolve();

  constructor(docker: Docker, settings: WorkloadSettings, clock: Clock) {
    this.#docker = docker;
    this.#settings = settings;
    this.#clock = clock;
  }

  name(instance: string): string {
    return workloadName(this.#settings.containerPrefix, instance);
  }

  async start(req: StartRequest): Promise<StartedInstance> {
    const name = this.name(req.instance);
    for (const m of req.service.mounts) {
      if (m.kind === 'bind')
        await mkdir(m.per_slot ? `${m.source}-${req.slot}` : m.source, { recursive: true });
    }
    let container: Docker.Container;
    try {
      const existing = await this.#inspect(name);
      if (existing !== null) {
        if (!isWorkloadInstance(existing.Config.Labels ?? {}, req.instance)) {
          throw new PloyzError(
            'NAME_COLLISION',
            `container ${name} exists and is not instance ${req.instance}; remove or rename it`,
            {
              details: { container: name },
            },
          );
        }
        container = this.#docker.getContainer(existing.Id); // a retried start: adopt it
        if (!existing.State.Running) await container.start();
      } else {
        // Just created, so not running: start it without asking Docker first.
        container = await this.#createAtFreeAddress(req);
        await container.start();
      }
    } catch (error) {
      if (dockerStatus(error) === 404) {
        throw new PloyzError(
          'IMAGE_MISSING',
          `image ${req.service.image} is not present on ${req.machine}; build or load it there first, or name its registry in the image (registry.example.com/team/app:1.2) to have it pulled at deploy`,
          {
            details: { image: req.service.image, machine: req.machine },
          },
        );
      }
      throw dockerDown(error);
    }
    const info = await container.inspect();
    const ip = info.NetworkSettings.Networks[this.#settings.bridge]?.IPAddress || null;
    return { container_id: info.Id, ip, name };
  }

  /** Create the container at a free workload address; creates are queued so picks never race. */
  #createAtFreeAddress(req: StartRequest): Promise<Docker.Container> {
    const create = this.#claiming.then(async () => {
      const address = pickWorkloadAddress(await this.#bridgeSubnet(), await this.#addressesInUse());
      return this.#docker.createContainer(workloadCreateOptions(req, this.#settings, address));
    });
    this.#claiming = create.catch(() => {});
    return create;
  }

  async #bridgeSubnet(): Promise<string> {
    const network = await this.#docker.getNetwork(this.#settings.bridge).inspect();
    const subnet: unknown = network.IPAM?.Config?.[0]?.Subnet;
    if (typeof subnet !== 'string') {
      throw new PloyzError('CONFIG_INVALID', `docker network ${this.#settings.bridge} has no subnet`);
    }
    return subnet;
  }

  /** Every address a container on the bridge holds or will hold again when it starts. */
  async #addressesInUse(): Promise<Set<string>> {
    const bridge = this.#settings.bridge;
    const used = new Set<string>();
    for (const c of await this.#docker.listContainers({ all: true, filters: { network: [bridge] } })) {
      const endpoint = c.NetworkSettings?.Networks?.[bridge];
      for (const address of [endpoint?.IPAMConfig?.IPv4Address, endpoint?.IPAddress]) {
        if (address) used.add(address);
      }
    }
    return used;
  }

  async waitReady(
    instance: StartedInstance & { name: string },
    readiness: DeployReadiness | null,
    signal: AbortSignal,
  ): Promise<void> {
    const container = this.#docker.getContainer(instance.container_id);
    const exited = async (): Promise<string | null> => {
      try {
        const s = (await container.inspect()).State;
        return s.Running ? null : `exited with code ${s.ExitCode}${s.Error ? ` (${s.Error})` : ''}`;
      } catch (error) {
        return dockerStatus(error) === 404 ? 'the container was removed' : null;
      }
    };
    try {
      if (readiness === null) {
        const gone = await exited();
        if (gone !== null)
          throw new PloyzError(
            'DEPLOY_READINESS_FAILED',
            `${instance.name} stopped right after start: ${gone}`,
          );
        return;
      }
      await waitUntilReady(readiness, {
        clock: this.#clock,
        probe: this.#probe(instance, readiness),
        exited,
        signal,
        what: instance.name,
      });
    } catch (error) {
      if (error instanceof PloyzError && error.code === 'DEPLOY_READINESS_FAILED')
        throw await this.#withLogTail(error, container);
      throw error;
    }
  }

  /**
   * A failed start's error with the container's last log lines: the deploy removes the candidate,
   * so they are the operator's only trace of why it did not come up. Unreadable logs leave the
   * error as it was.
   */
  async #withLogTail(error: PloyzError, container: Docker.Container): Promise<PloyzError> {
    let lines: string[];
    try {
      const tty = (await container.inspect()).Config.Tty === true;
      const raw = await container.logs({
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: FAILED_START_LOG_LINES,
        follow: false,
      });
      lines = dockerLogLines(raw, tty).map((l) =>
        l.text.length > LOG_LINE_CHARS ? `${l.text.slice(0, LOG_LINE_CHARS)}…` : l.text,
      );
    } catch {
      return error;
    }
    const said =
      lines.length === 0
        ? ' It printed no log lines.'
        : `\nIts last ${lines.length} log line(s):\n${lines.map((l) => `  | ${l}`).join('\n')}`;
    return new PloyzError(error.code, `${error.message}${said}`, {
      details: { ...error.details, log_tail: lines },
      cause: error.cause,
    });
  }

  #probe(instance: StartedInstance, readiness: DeployReadiness): Probe {
    if (readiness.kind === 'exec') {
      const command = readiness.command ?? ['true'];
      return (timeoutMs) => this.#exec(instance.container_id, command, timeoutMs);
    }
    if (instance.ip === null)
      return async () => ({ ok: false, reason: 'the container has no bridge address' });
    const port = readiness.port ?? 80;
    return readiness.kind === 'http'
      ? httpProbe(instance.ip, port, readiness.path ?? '/')
      : tcpProbe(instance.ip, port);
  }

  async #exec(
    containerId: string,
    command: string[],
    timeoutMs: number,
  ): Promise<{ ok: true } | { ok: false; reason: string }> {
    try {
      const exec = await this.#docker
        .getContainer(containerId)
        .exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      stream.resume();
      const deadline = this.#clock.now().getTime() + Math.max(1, timeoutMs);
      for (;;) {
        const info = await exec.inspect();
        if (!info.Running) {
          stream.destroy();
          return info.ExitCode === 0 ? { ok: true } : { ok: false, reason: `exit code ${info.ExitCode}` };
        }
        if (this.#clock.now().getTime() > deadline) {
          stream.destroy();
          return { ok: false, reason: 'timeout' };
        }
        await this.#clock.sleep(20);
      }
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.message : String(error) };
    }
  }

  async stop(req: StopRequest): Promise<void> {
    const name = this.name(req.instance);
    try {
      const existing = await this.#inspect(name);
      if (existing === null) return;
      if (!isWorkloadInstance(existing.Config.Labels ?? {}, req.instance)) {
        throw new PloyzError(
          'NAME_COLLISION',
          `container ${name} is not instance ${req.instance}; it was left alone`,
          { details: { container: name } },
        );
      }
      const container = this.#docker.getContainer(existing.Id);
      if (existing.State.Running) {
        await container.stop({ t: Math.ceil(req.stop_grace_ms / 1000) }).catch((error: unknown) => {
          if (dockerStatus(error) !== 304 && dockerStatus(error) !== 404) throw error;
        });
      }
      await container.remove({ force: true, v: false }).catch((error: unknown) => {
        if (dockerStatus(error) !== 404) throw error;
      });
    } catch (error) {
      throw dockerDown(error);
    }
  }

  async #inspect(name: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.#docker.getContainer(name).inspect();
    } catch (error) {
      if (dockerStatus(error) === 404) return null;
      throw dockerDown(error);
    }
  }
}

/**
 * Capacity for placement from the daemon's probe answer (bytes → MiB): the coordinator's
 * `MachineCapacity` (deploy/model/placement.ts), which checks this shape where it takes it.
 */
export function capacityFromProbe(answer: {
  cpus: number;
  memory_available_bytes: number;
  disk_free_bytes: number;
}) {
  return {
    cpus: answer.cpus,
    memory_free_mb: Math.floor(answer.memory_available_bytes / 1048576),
    disk_free_mb: Math.floor(answer.disk_free_bytes / 1048576),
  };
}
