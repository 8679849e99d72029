/**
 * Turns a checked manifest input (schema and cross-field rules passed) into the normalised,
 * fully-defaulted `Manifest`. Defaults live here and in docs/manifest.md, nowhere else.
 */
import { DEFAULT_PULL_POLICY } from './image-ref.ts';
import {
  type MountInput,
  type PhaseInput,
  parseMode,
  parseOwner,
  type ReadinessInput,
  type RouteInput,
  type ServiceInput,
} from './manifest-input.ts';
import { type CheckedInput, normaliseRoutePath, resolvePortRef } from './manifest-rules.ts';
import {
  DEFAULT_PHASE_ID,
  type Manifest,
  type MountSpec,
  type PhaseSpec,
  type PlacementSpec,
  type PortSpec,
  type ReadinessSpec,
  type RouteSpec,
  type ServiceSpec,
  type VolumeSpec,
} from './manifest-spec.ts';
import { parseDuration, parseSize } from './quantities.ts';

export const MANIFEST_DEFAULTS = {
  path: '/',
  protocol: 'tcp',
  readiness_interval: '1s',
  readiness_timeout: '1s',
  readiness_retries: 3,
  readiness_start_period: '0s',
  /** A starting instance's time to pass its first check (Kamal waits 30 s; Kubernetes has startup probes). */
  readiness_start_timeout: '60s',
  replicas: 1,
  restart: 'unless_stopped',
  stop_grace: '10s',
  volume_scope: 'single',
  keep_snapshots: 10,
  commit_policy: 'end_of_deploy',
} as const;

function duration(value: string | number | undefined, fallback: string): number {
  return parseDuration(typeof value === 'string' ? value : fallback) ?? 0;
}

function size(value: string | number | undefined): number | null {
  return value === undefined ? null : parseSize(value);
}

function portName(ref: string | undefined, service: ServiceInput): string {
  const r = resolvePortRef(ref, service.ports);
  // The rules already rejected unresolved references.
  return r.ok ? r.name : (ref ?? '');
}

function route(r: RouteInput, service: ServiceInput): RouteSpec {
  if (r.http !== undefined) {
    return {
      kind: 'http',
      hostnames: r.http.hostnames.map((h) => h.toLowerCase()),
      path: normaliseRoutePath(r.http.path),
      port: portName(r.http.port, service),
      ...(r.http.tls === undefined ? {} : { tls: r.http.tls }),
      ...(r.http.https_redirect === true ? { https_redirect: true as const } : {}),
    };
  }
  const tcp = r.tcp ?? { listen: 0 };
  return { kind: 'tcp', listen: tcp.listen, port: portName(tcp.port, service) };
}

function readiness(r: ReadinessInput, service: ServiceInput): ReadinessSpec {
  const timing = {
    interval_ms: duration(r.interval, MANIFEST_DEFAULTS.readiness_interval),
    timeout_ms: duration(r.timeout, MANIFEST_DEFAULTS.readiness_timeout),
    retries: r.retries ?? MANIFEST_DEFAULTS.readiness_retries,
    start_period_ms: duration(r.start_period, MANIFEST_DEFAULTS.readiness_start_period),
    ...(r.start_timeout === undefined ? {} : { start_timeout_ms: duration(r.start_timeout, '0s') }),
  };
  if (r.http !== undefined) {
    return { kind: 'http', path: r.http.path, port: portName(r.http.port, service), ...timing };
  }
  if (r.tcp !== undefined) return { kind: 'tcp', port: portName(r.tcp.port, service), ...timing };
  return { kind: 'exec', command: r.exec?.command ?? [], ...timing };
}

function mount(m: MountInput): MountSpec {
  const target = m.target.replace(/\/+$/, '');
  if (m.volume !== undefined)
    return { kind: 'volume', volume: m.volume, target, read_only: m.read_only ?? false };
  return { kind: 'tmpfs', target, size_bytes: size(m.tmpfs?.size) };
}

function placement(service: ServiceInput): PlacementSpec {
  const p = service.placement ?? {};
  const regions = [...new Set(p.regions ?? [])].sort();
  if (p.mode === 'global') return { mode: 'global', regions };
  return { mode: 'replicated', replicas: p.replicas ?? MANIFEST_DEFAULTS.replicas, regions };
}

export function normaliseService(namespace: string, s: ServiceInput): ServiceSpec {
  const ports: PortSpec[] = Object.entries(s.ports ?? {})
    .map(([name, p]) => ({ name, port: p.port, protocol: p.protocol ?? MANIFEST_DEFAULTS.protocol }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const env = Object.fromEntries(
    Object.entries(s.env ?? {})
      .map(([k, v]): [string, string] => [k, String(v)])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
  return {
    namespace,
    name: s.name,
    image: s.image,
    ...(s.pull_policy === undefined || s.pull_policy === DEFAULT_PULL_POLICY
      ? {}
      : { pull_policy: s.pull_policy }),
    command: s.command ?? null,
    entrypoint: s.entrypoint ?? null,
    env,
    ports,
    routes: (s.routes ?? []).map((r) => route(r, s)),
    readiness: s.readiness === undefined ? null : readiness(s.readiness, s),
    placement: placement(s),
    mounts: (s.mounts ?? []).map(mount),
    resources: { cpus: s.resources?.cpus ?? null, memory_bytes: size(s.resources?.memory) },
    restart: s.restart ?? MANIFEST_DEFAULTS.restart,
    stop_grace_ms: duration(s.stop_grace, MANIFEST_DEFAULTS.stop_grace),
  };
}

/** Declared phases in execution order (stable: declaration order among ready phases), then the implicit one. */
function orderPhases(phases: PhaseInput[], services: string[], volumes: string[]): PhaseSpec[] {
  const declared: PhaseSpec[] = phases.map((p) => ({
    id: p.id,
    services: p.services ?? [],
    volumes: p.volumes ?? [],
    after: [...new Set(p.after ?? [])],
    commit_policy: p.commit_policy ?? MANIFEST_DEFAULTS.commit_policy,
  }));
  const ordered: PhaseSpec[] = [];
  const placed = new Set<string>();
  while (ordered.length < declared.length) {
    const next = declared.find((p) => !placed.has(p.id) && p.after.every((a) => placed.has(a)));
    // The rules reject cycles, so there is always a next phase.
    if (next === undefined) break;
    ordered.push(next);
    placed.add(next.id);
  }
  const listedServices = new Set(declared.flatMap((p) => p.services));
  const listedVolumes = new Set(declared.flatMap((p) => p.volumes));
  const restServices = services.filter((s) => !listedServices.has(s));
  const restVolumes = volumes.filter((v) => !listedVolumes.has(v));
  if (declared.length === 0 || restServices.length > 0 || restVolumes.length > 0) {
    ordered.push({
      id: DEFAULT_PHASE_ID,
      services: restServices,
      volumes: restVolumes,
      after: ordered.map((p) => p.id),
      commit_policy: MANIFEST_DEFAULTS.commit_policy,
    });
  }
  return ordered;
}

export function normaliseManifest(input: CheckedInput): Manifest {
  const services = input.services.map(({ value }) => normaliseService(input.namespace, value));
  const volumes: VolumeSpec[] = input.volumes.map(({ value }) => ({
    name: value.name,
    quota_bytes: size(value.quota),
    scope: value.scope ?? MANIFEST_DEFAULTS.volume_scope,
    owner: value.owner === undefined ? null : parseOwner(value.owner),
    mode: value.mode === undefined ? null : parseMode(value.mode),
    keep_snapshots: value.keep_snapshots ?? MANIFEST_DEFAULTS.keep_snapshots,
  }));
  const phases = orderPhases(
    input.phases.map(({ value }) => value),
    services.map((s) => s.name),
    volumes.map((v) => v.name),
  );
  return { namespace: input.namespace, services, volumes, phases };
}
