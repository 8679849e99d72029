/**
 * The daemon's narrow view of the Docker engine (dockerode 5, API v1.41): observe containers by
 * name, ensure the bridge network, resolve images, create/start and remove system containers.
 */

import { LABELS } from '@ployz/identity';
import { PloyzError } from '@ployz/types';
import Docker from 'dockerode';
import type { ContainerSpec } from '../dataplane/component-spec.ts';
import type { ObservedContainer } from '../dataplane/plan.ts';
import { bridgeIpam } from '../workloads/addresses.ts';
import { dockerError, dockerStatus } from './docker-errors.ts';

export interface BridgeSpec {
  name: string;
  subnet: string;
  gateway: string;
  installation: string;
}

export function connectDocker(socketPath = '/var/run/docker.sock'): Docker {
  return new Docker({ socketPath, version: 'v1.41' });
}

const unavailable = (error: unknown) => dockerError(error, 'the Docker engine does not answer');

/** One container event from Docker's stream (`start`, `die`, `restart`, `destroy`, …). */
export interface ContainerEvent {
  action: string;
  id: string;
  labels: Readonly<Record<string, string>>;
}

export interface EventFollower {
  /** Every (re)connect to the stream: the engine answers again, state may have changed unseen. */
  onConnect(): void;
  onEvent(event: ContainerEvent): void;
}

/**
 * Follow Docker's container events until `signal` aborts, reconnecting (every `retryMs`) when the
 * stream ends — dockerd stopped or restarted — so the follower hears about the engine's return.
 */
export async function followContainerEvents(
  docker: Docker,
  follower: EventFollower,
  signal: AbortSignal,
  retryMs = 250,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const stream = (await docker.getEvents({
        filters: { type: ['container'] },
      })) as NodeJS.ReadableStream & {
        destroy(): void;
      };
      const abort = () => stream.destroy();
      signal.addEventListener('abort', abort, { once: true });
      follower.onConnect();
      let rest = '';
      try {
        for await (const chunk of stream) {
          rest += chunk.toString();
          const lines = rest.split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) {
            const event = parseContainerEvent(line);
            if (event !== null) follower.onEvent(event);
          }
        }
      } finally {
        signal.removeEventListener('abort', abort);
      }
    } catch {
      // dockerd is down or the stream broke: retry below.
    }
    if (!signal.aborted) await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

function parseContainerEvent(line: string): ContainerEvent | null {
  if (line.trim() === '') return null;
  try {
    const raw = JSON.parse(line) as { Action?: unknown; Actor?: { ID?: unknown; Attributes?: unknown } };
    if (typeof raw.Action !== 'string' || typeof raw.Actor?.ID !== 'string') return null;
    const attributes = raw.Actor.Attributes;
    const labels: Record<string, string> = {};
    if (typeof attributes === 'object' && attributes !== null) {
      for (const [k, v] of Object.entries(attributes)) if (typeof v === 'string') labels[k] = v;
    }
    return { action: raw.Action, id: raw.Actor.ID, labels };
  } catch {
    return null;
  }
}

export class DockerEngine {
  readonly docker: Docker;

  constructor(docker: Docker) {
    this.docker = docker;
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** Resolve a local image to its id; never pulls (dataplane/pull.ts does, from a registry). */
  async imageId(ref: string): Promise<string> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return info.Id;
    } catch (error) {
      if (dockerStatus(error) === 404) {
        throw new PloyzError(
          'IMAGE_MISSING',
          `image ${ref} is not present locally; build it with bash scripts/images.sh, or give ployzd a registry to pull it from (PLOYZ_IMAGE_REGISTRY, machine init|join --registry)`,
          {
            details: { image: ref },
          },
        );
      }
      throw unavailable(error);
    }
  }

  /** Inspect the containers holding exactly these names (any labels, any state). */
  async observe(names: string[]): Promise<ObservedContainer[]> {
    const out: ObservedContainer[] = [];
    for (const name of names) {
      const c = await this.inspectByName(name);
      if (c) out.push(c);
    }
    return out;
  }

  async inspectByName(nameOrId: string): Promise<ObservedContainer | null> {
    try {
      const info = await this.docker.getContainer(nameOrId).inspect();
      const health = info.State.Health?.Status;
      return {
        id: info.Id,
        name: info.Name.replace(/^\//, ''),
        labels: info.Config.Labels ?? {},
        running: info.State.Running,
        health: health === 'healthy' || health === 'unhealthy' || health === 'starting' ? health : 'none',
        startedAt: info.State.Running ? info.State.StartedAt : null,
        imageId: info.Image,
        version: info.Config.Labels?.[OCI_VERSION_LABEL] ?? null,
      };
    } catch (error) {
      if (dockerStatus(error) === 404) return null;
      throw unavailable(error);
    }
  }

  async ensureBridge(spec: BridgeSpec): Promise<{ id: string; created: boolean }> {
    const existing = await this.findNetwork(spec.name);
    if (existing) {
      const labels = existing.Labels ?? {};
      if (labels[LABELS.managed] !== 'true' || labels[LABELS.installation] !== spec.installation) {
        throw new PloyzError(
          'NAME_COLLISION',
          `docker network ${spec.name} exists but is not this installation's; remove it or configure another bridge name`,
          { details: { network: spec.name } },
        );
      }
      const subnet = existing.IPAM?.Config?.[0]?.Subnet;
      if (subnet !== spec.subnet) {
        throw new PloyzError(
          'CONFIG_INVALID',
          `docker network ${spec.name} has subnet ${subnet ?? '(none)'} but this machine's subnet is ${spec.subnet}`,
          { details: { network: spec.name } },
        );
      }
      return { id: existing.Id, created: false };
    }
    const net = await this.docker.createNetwork({
      Name: spec.name,
      Driver: 'bridge',
      CheckDuplicate: true,
      // Docker allocates only inside IPRange; system and workload addresses are Ployz's (addresses.ts).
      IPAM: { Driver: 'default', Config: [{ ...bridgeIpam(spec.subnet), Gateway: spec.gateway }] },
      Labels: { [LABELS.managed]: 'true', [LABELS.kind]: 'system', [LABELS.installation]: spec.installation },
    });
    return { id: net.id, created: true };
  }

  private async findNetwork(name: string) {
    const nets = await this.docker.listNetworks({ filters: { name: [name] } });
    return nets.find((n) => n.Name === name);
  }

  /** Create and start one system container. Returns the new id. */
  async createStarted(spec: ContainerSpec, hash: string, parentId: string | null): Promise<string> {
    const labels: Record<string, string> = { ...spec.labels, [LABELS.configHash]: hash };
    if (parentId !== null) labels[LABELS.parentContainerId] = parentId;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const p of spec.ports) {
      const key = `${p.containerPort}/${p.protocol}`;
      exposed[key] = {};
      bindings[key] = [{ HostIp: p.hostIp, HostPort: String(p.hostPort) }];
    }
    const bridge = spec.network.kind === 'bridge' ? spec.network : null;
    if (!bridge && parentId === null) {
      throw new PloyzError('INTERNAL', `${spec.component} shares a netns but has no parent container`);
    }
    const container = await this.docker.createContainer({
      name: spec.name,
      Image: spec.image,
      ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
      ...(spec.cmd.length > 0 ? { Cmd: spec.cmd } : {}),
      ...(spec.user !== null ? { User: spec.user } : {}),
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: labels,
      ExposedPorts: exposed,
      ...(spec.healthcheck
        ? {
            Healthcheck: {
              Test: ['CMD', ...spec.healthcheck],
              Interval: 5_000_000_000,
              Timeout: 3_000_000_000,
              Retries: 3,
              StartPeriod: 15_000_000_000,
            },
          }
        : {}),
      HostConfig: {
        NetworkMode: bridge ? bridge.bridge : `container:${parentId}`,
        Binds: spec.binds,
        CapAdd: spec.capAdd,
        Devices: spec.devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' })),
        Sysctls: spec.sysctls,
        PortBindings: bindings,
        RestartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 },
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      },
      ...(bridge
        ? {
            NetworkingConfig: {
              EndpointsConfig: { [bridge.bridge]: { IPAMConfig: { IPv4Address: bridge.ipv4 } } },
            },
          }
        : {}),
    });
    await container.start();
    return container.id;
  }

  /**
   * Stops a container the way its app drains: SIGTERM, then SIGKILL after `seconds` (replace-beside
   * drains the old edge app this way). One already stopped or gone is no error.
   */
  async stop(id: string, seconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: seconds });
    } catch (error) {
      const status = dockerStatus(error);
      if (status !== 304 && status !== 404)
        throw dockerError(error, `cannot stop container ${id.slice(0, 12)}`);
    }
  }

  async rename(id: string, name: string): Promise<void> {
    try {
      await this.docker.getContainer(id).rename({ name });
    } catch (error) {
      throw dockerError(error, `cannot rename container ${id.slice(0, 12)} to ${name}`);
    }
  }

  /** Sends a signal to a running container (ployz-nats: SIGHUP reloads its config). */
  async signal(nameOrId: string, signal: 'SIGHUP'): Promise<void> {
    try {
      await this.docker.getContainer(nameOrId).kill({ signal });
    } catch (error) {
      throw new PloyzError(
        dockerStatus(error) === 404 || dockerStatus(error) === 409 ? 'NOT_FOUND' : 'DOCKER_UNAVAILABLE',
        `cannot send ${signal} to ${nameOrId}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * Stop and remove one container by id (only ever called with ids the planner chose). When the
   * engine stops it but cannot delete it — overlay2's "failed to remove root filesystem … device
   * or resource busy" after an engine restart is the known case — the dead container is renamed
   * aside (`<name>.stale-<id>`) so its name is free for the replacement; `sweepSetAside` removes
   * it on a later pass. A container that is still running is never set aside (it would keep its
   * address): that failure is thrown.
   */
  async remove(id: string): Promise<RemoveOutcome> {
    const container = this.docker.getContainer(id);
    try {
      await container.remove({ force: true, v: false });
      return { kind: 'removed' };
    } catch (error) {
      if (dockerStatus(error) === 404) return { kind: 'removed' };
      const info = await container.inspect().catch(() => null);
      const refused = dockerError(error, `cannot remove container ${id.slice(0, 12)}`);
      if (info === null || info.State.Running) throw refused;
      const name = `${info.Name.replace(/^\//, '')}${SET_ASIDE_MARK}${id.slice(0, 12)}`;
      try {
        await container.rename({ name });
      } catch {
        throw refused;
      }
      return { kind: 'set_aside', name, cause: error instanceof Error ? error.message : String(error) };
    }
  }

  /**
   * Removes the installation's system containers an earlier `remove` set aside. Those the engine
   * still cannot delete stay for the next sweep; their names are returned.
   */
  async sweepSetAside(installation: string): Promise<string[]> {
    const listed = await this.docker
      .listContainers({
        all: true,
        filters: { label: [`${LABELS.installation}=${installation}`, `${LABELS.kind}=system`] },
      })
      .catch(() => []);
    const left: string[] = [];
    for (const c of listed) {
      const name = (c.Names[0] ?? '').replace(/^\//, '');
      if (!isSetAsideName(name)) continue;
      try {
        await this.docker.getContainer(c.Id).remove({ force: true, v: false });
      } catch (error) {
        if (dockerStatus(error) !== 404) left.push(name);
      }
    }
    return left;
  }
}

/** The OCI label an image carries its version in (scripts/images.sh); Docker copies it onto containers. */
export const OCI_VERSION_LABEL = 'org.opencontainers.image.version';

/** What `DockerEngine.remove` did with a container. */
export type RemoveOutcome = { kind: 'removed' } | { kind: 'set_aside'; name: string; cause: string };

const SET_ASIDE_MARK = '.stale-';

/** `<name>.stale-<12 hex>`: a system container `remove` renamed aside. */
export function isSetAsideName(name: string): boolean {
  const at = name.lastIndexOf(SET_ASIDE_MARK);
  return at > 0 && /^[0-9a-f]{12}$/.test(name.slice(at + SET_ASIDE_MARK.length));
}
