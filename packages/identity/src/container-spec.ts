/**
 * The container config hash (label `ployz.config-hash`): sha256 over everything that defines a
 * container. The daemon adopts a running container only when the hash it would compute today
 * equals the label, so anything that changes behaviour belongs in `ContainerSpec`.
 */
import { taggedHash } from './digest.ts';
import { LABELS } from './labels.ts';

export interface ContainerMount {
  type: 'volume' | 'bind' | 'tmpfs';
  /** Volume name or host path; absent for tmpfs. */
  source?: string | null;
  target: string;
  read_only?: boolean;
  /** tmpfs size in bytes. */
  size_bytes?: number | null;
}

export interface ContainerPort {
  container_port: number;
  protocol?: 'tcp' | 'udp';
  /** Published host port, when published. */
  host_port?: number | null;
  host_ip?: string | null;
}

/** What defines a container. Optional fields and empty lists/maps mean the same thing. */
export interface ContainerSpec {
  name: string;
  /** Prefer the image id (sha256:…) so a retagged image counts as drift. */
  image: string;
  command?: readonly string[] | null;
  entrypoint?: readonly string[] | null;
  env?: Readonly<Record<string, string>>;
  labels?: Readonly<Record<string, string>>;
  mounts?: readonly ContainerMount[];
  /** `bridge`, a network name, or `container:<name>`; the parent's id goes in `parent_container_id`. */
  network_mode?: string | null;
  /** For `network_mode: container:…`: the id of the container whose namespace this one shares. */
  parent_container_id?: string | null;
  /** Fixed address on the network, when assigned. */
  ip?: string | null;
  ports?: readonly ContainerPort[];
  hostname?: string | null;
  user?: string | null;
  working_dir?: string | null;
  cap_add?: readonly string[];
  devices?: readonly string[];
  dns?: readonly string[];
  sysctls?: Readonly<Record<string, string>>;
  restart_policy?: string | null;
  memory_bytes?: number | null;
  nano_cpus?: number | null;
  stop_grace_ms?: number | null;
  /** Anything else a component wants in its identity (e.g. a rendered config file). */
  extra?: unknown;
}

const byKey =
  <T>(key: (t: T) => string) =>
  (a: T, b: T) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };

/** The normalised value the hash is taken over; exported for debugging drift. */
export function configHashInput(spec: ContainerSpec): Record<string, unknown> {
  const labels = Object.fromEntries(
    Object.entries(spec.labels ?? {}).filter(([k]) => k !== LABELS.configHash),
  );
  return {
    name: spec.name,
    image: spec.image,
    command: spec.command ?? null,
    entrypoint: spec.entrypoint ?? null,
    env: { ...spec.env },
    labels,
    mounts: (spec.mounts ?? [])
      .map((m) => ({
        type: m.type,
        source: m.source ?? null,
        target: m.target,
        read_only: m.read_only ?? false,
        size_bytes: m.size_bytes ?? null,
      }))
      .sort(byKey((m) => m.target)),
    network_mode: spec.network_mode ?? null,
    parent_container_id: spec.parent_container_id ?? null,
    ip: spec.ip ?? null,
    ports: (spec.ports ?? [])
      .map((p) => ({
        container_port: p.container_port,
        protocol: p.protocol ?? 'tcp',
        host_port: p.host_port ?? null,
        host_ip: p.host_ip ?? null,
      }))
      .sort(
        byKey(
          (p) => `${String(p.container_port).padStart(5, '0')}/${p.protocol}/${p.host_ip}/${p.host_port}`,
        ),
      ),
    hostname: spec.hostname ?? null,
    user: spec.user ?? null,
    working_dir: spec.working_dir ?? null,
    cap_add: [...new Set(spec.cap_add ?? [])].sort(),
    devices: [...new Set(spec.devices ?? [])].sort(),
    dns: [...(spec.dns ?? [])],
    sysctls: { ...spec.sysctls },
    restart_policy: spec.restart_policy ?? null,
    memory_bytes: spec.memory_bytes ?? null,
    nano_cpus: spec.nano_cpus ?? null,
    stop_grace_ms: spec.stop_grace_ms ?? null,
    extra: spec.extra ?? null,
  };
}

/** 64 hex characters; the value of the `ployz.config-hash` label. */
export function configHash(spec: ContainerSpec): string {
  return taggedHash('ployz.container.v1', configHashInput(spec));
}

/** `labels` plus the config hash label computed over the whole spec. */
export function labelWithConfigHash(spec: ContainerSpec): Record<string, string> {
  return { ...spec.labels, [LABELS.configHash]: configHash(spec) };
}
