/**
 * The deploy engine's view of a desired namespace: what it needs from a parsed manifest to plan,
 * place, start and compare services. `fromManifest` (manifest-adapter.ts) maps the domain
 * model's ServiceSpec onto these shapes; the engine never reads TOML itself.
 */
import type { CommitPolicy } from '@ployz/types';

export interface ReadinessSpec {
  kind: 'http' | 'tcp' | 'exec';
  /** http: request path. */
  path?: string | undefined;
  /** http/tcp: container port number. */
  port?: number | undefined;
  /** exec: argv run inside the container; exit 0 = ready. */
  command?: string[] | undefined;
  interval_ms: number;
  timeout_ms: number;
  retries: number;
  start_period_ms: number;
}

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

export type RestartPolicy = 'no' | 'always' | 'on-failure' | 'unless-stopped';

export interface DeployService {
  name: string;
  image: string;
  command: string[] | null;
  entrypoint: string[] | null;
  env: Record<string, string>;
  /** Named ports: name → container port. */
  ports: Record<string, number>;
  readiness: ReadinessSpec | null;
  placement: PlacementSpec;
  mounts: MountSpec[];
  resources: ResourceSpec;
  restart: RestartPolicy;
  stop_grace_ms: number;
  /** The full domain spec, stored (sealed) in the revision and hashed into its id. */
  source: Record<string, unknown>;
}

export interface PhaseSpec {
  id: string;
  services: string[];
  after: string[];
  commit: CommitPolicy;
}

export interface DeployManifest {
  namespace: string;
  services: DeployService[];
  phases: PhaseSpec[];
  /** Hash of the whole manifest (recorded in status and commits). */
  manifest_hash: string;
}

/** The phase every service not named by a manifest phase belongs to; always last. */
export const DEFAULT_PHASE = 'default';
