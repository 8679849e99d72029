/**
 * The participant's start contract: the service a start runs (`DeployService`: image, command,
 * env, named ports, readiness with container ports, mounts on this machine, resources, restart,
 * placement and the manifest's spec it came from), the start and stop requests, the started
 * instance, and `deployServiceOf`, which turns a manifest `ServiceSpec` into that service
 * (volume directories under a root). The participant does that to a `deploy_start` body; the
 * coordinator (deploy/) to its manifest, and uses these shapes from here.
 */
import { join } from 'node:path';
import type { DeployReadiness } from '@ployz/protocol';
import { PloyzError, type RestartPolicy, type ServiceSpec, type VolumeSpec } from '@ployz/types';

export type PlacementSpec =
  | { mode: 'replicated'; replicas: number; regions: string[] }
  | { mode: 'global'; regions: string[] };

/**
 * `bind`: a host directory (manifest volumes live as directories under the daemon's state dir
 * for now; `per_slot` appends `-<slot>`). `tmpfs`: memory-backed.
 */
export type MountSpec =
  | { kind: 'bind'; source: string; target: string; read_only: boolean; per_slot: boolean }
  | { kind: 'tmpfs'; target: string; size_bytes: number | null };

export interface ResourceSpec {
  /** CPU cores, fractional. */
  cpus?: number | undefined;
  memory_mb?: number | undefined;
}

export interface DeployService {
  name: string;
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  env: Record<string, string>;
  /** Named ports: name → container port. */
  ports: Record<string, number>;
  readiness: DeployReadiness | null;
  placement: PlacementSpec;
  mounts: MountSpec[];
  resources: ResourceSpec;
  /** The manifest's policy (@ployz/types); the Docker name is the container spec's business. */
  restart: RestartPolicy;
  stop_grace_ms: number;
  /** The manifest's spec of the service, stored (sealed) in the revision and hashed into its id. */
  source: ServiceSpec;
  /** The declarations of the volumes it mounts (the participant creates or adopts each). */
  volumes: VolumeSpec[];
}

export interface StartRequest {
  namespace: string;
  service: DeployService;
  revision: string;
  deploy: string;
  instance: string;
  slot: number;
  machine: string;
}

export interface StartedInstance {
  container_id: string;
  ip: string | null;
  /** The container's name on its machine (the participant's container prefix, not the coordinator's). */
  name: string;
}

export interface StopRequest {
  namespace: string;
  service: string;
  instance: string;
  machine: string;
  stop_grace_ms: number;
}

export function volumeDir(volumesRoot: string, namespace: string, volume: string): string {
  return join(volumesRoot, namespace, volume);
}

export function deployServiceOf(
  spec: ServiceSpec,
  volumes: readonly VolumeSpec[],
  volumesRoot: string,
): DeployService {
  const ports = Object.fromEntries(spec.ports.map((p) => [p.name, p.port]));
  const portOf = (name: string): number => {
    const port = ports[name];
    if (port === undefined)
      throw new PloyzError(
        'MANIFEST_INVALID',
        `service '${spec.name}' readiness names unknown port '${name}'`,
      );
    return port;
  };
  let readiness: DeployReadiness | null = null;
  if (spec.readiness !== null) {
    const r = spec.readiness;
    const timing = {
      interval_ms: r.interval_ms,
      timeout_ms: r.timeout_ms,
      retries: r.retries,
      start_period_ms: r.start_period_ms,
      start_timeout_ms: r.start_timeout_ms,
    };
    readiness =
      r.kind === 'http'
        ? { kind: 'http', path: r.path, port: portOf(r.port), ...timing }
        : r.kind === 'tcp'
          ? { kind: 'tcp', port: portOf(r.port), ...timing }
          : { kind: 'exec', command: r.command, ...timing };
  }
  const mounts: MountSpec[] = spec.mounts.map((m) =>
    m.kind === 'volume'
      ? {
          kind: 'bind',
          source: volumeDir(volumesRoot, spec.namespace, m.volume),
          target: m.target,
          read_only: m.read_only,
          per_slot: volumes.find((v) => v.name === m.volume)?.scope === 'per_slot',
        }
      : { kind: 'tmpfs', target: m.target, size_bytes: m.size_bytes },
  );
  return {
    name: spec.name,
    image: spec.image,
    command: spec.command,
    entrypoint: spec.entrypoint,
    env: { ...spec.env },
    ports,
    readiness,
    placement: spec.placement,
    mounts,
    resources: {
      ...(spec.resources.cpus !== null ? { cpus: spec.resources.cpus } : {}),
      ...(spec.resources.memory_bytes !== null
        ? { memory_mb: Math.ceil(spec.resources.memory_bytes / 1048576) }
        : {}),
    },
    restart: spec.restart,
    stop_grace_ms: spec.stop_grace_ms,
    source: spec,
    volumes: volumes.filter((v) => spec.mounts.some((m) => m.kind === 'volume' && m.volume === v.name)),
  };
}
