/**
 * This machine's workload containers on the real Docker engine: start (create + start, never a
 * pull), readiness (http/tcp from the host over the bridge, exec inside the container), stop
 * (grace, then kill) and remove. Containers without Ployz labels are never touched, even when
 * their name collides.
 */
import { mkdir } from 'node:fs/promises';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import type { MachineCapacity } from './placement.ts';
import type { Clock, StartedInstance, StartRequest, StopRequest } from './ports.ts';
import { httpProbe, type Probe, tcpProbe, waitUntilReady } from './readiness.ts';
import type { ReadinessSpec } from './spec.ts';
import {
  isWorkloadInstance,
  type WorkloadSettings,
  workloadCreateOptions,
  workloadName,
} from './workload-container.ts';

function statusOf(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

function dockerDown(error: unknown): PloyzError {
  if (error instanceof PloyzError) return error;
  return new PloyzError(
    'DOCKER_UNAVAILABLE',
    `the Docker engine failed: ${error instanceof Error ? error.message : String(error)}; check dockerd`,
    {
      cause: error,
    },
  );
}

export class DockerWorkloads {
  readonly #docker: Docker;
  readonly #settings: WorkloadSettings;
  readonly #clock: Clock;

  constructor(docker: Docker, settings: WorkloadSettings, clock: Clock) {
    this.#docker = docker;
    this.#settings = settings;
    this.#clock = clock;
  }

  name(namespace: string, service: string, instance: string): string {
    return workloadName(this.#settings.containerPrefix, namespace, service, instance);
  }

  async start(req: StartRequest): Promise<StartedInstance> {
    const options = workloadCreateOptions(req, this.#settings);
    const name = options.name as string;
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
        container = await this.#docker.createContainer(options);
        await container.start();
      }
    } catch (error) {
      if (statusOf(error) === 404) {
        throw new PloyzError(
          'IMAGE_MISSING',
          `image ${req.service.image} is not present on ${req.machine}; build or load it there first (no registry pulls)`,
          {
            details: { image: req.service.image, machine: req.machine },
          },
        );
      }
      throw dockerDown(error);
    }
    const info = await container.inspect();
    const ip = info.NetworkSettings.Networks[this.#settings.bridge]?.IPAddress || null;
    return { container_id: info.Id, ip };
  }

  async waitReady(
    instance: StartedInstance & { name: string },
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void> {
    const container = this.#docker.getContainer(instance.container_id);
    const exited = async (): Promise<string | null> => {
      try {
        const s = (await container.inspect()).State;
        return s.Running ? null : `exited with code ${s.ExitCode}${s.Error ? ` (${s.Error})` : ''}`;
      } catch (error) {
        return statusOf(error) === 404 ? 'the container was removed' : null;
      }
    };
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
  }

  #probe(instance: StartedInstance, readiness: ReadinessSpec): Probe {
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
    const name = this.name(req.namespace, req.service, req.instance);
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
          if (statusOf(error) !== 304 && statusOf(error) !== 404) throw error;
        });
      }
      await container.remove({ force: true, v: false }).catch((error: unknown) => {
        if (statusOf(error) !== 404) throw error;
      });
    } catch (error) {
      throw dockerDown(error);
    }
  }

  async #inspect(name: string): Promise<Docker.ContainerInspectInfo | null> {
    try {
      return await this.#docker.getContainer(name).inspect();
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw dockerDown(error);
    }
  }
}

/** Capacity for placement from the daemon's probe answer (bytes → MiB). */
export function capacityFromProbe(answer: {
  cpus: number;
  memory_available_bytes: number;
  disk_free_bytes: number;
}): MachineCapacity {
  return {
    cpus: answer.cpus,
    memory_free_mb: Math.floor(answer.memory_available_bytes / 1048576),
    disk_free_mb: Math.floor(answer.disk_free_bytes / 1048576),
  };
}
