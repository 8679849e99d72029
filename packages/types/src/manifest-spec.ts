/**
 * The normalised, fully-defaulted manifest that the deploy engine, the planner and routing use.
 * `parseManifest` produces it; nothing downstream ever sees the raw TOML/JSON shape. Field
 * names are snake_case because service specs are stored (sealed) in revision records.
 *
 * This file must not import records.ts (records.ts imports it for `RevisionRecord.spec`).
 */
import { z } from 'zod';
import { PULL_POLICIES } from './image-ref.ts';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const SpecName = z
  .string()
  .max(63)
  .regex(
    DNS_LABEL,
    'must be a DNS label: lowercase letters, digits and -, starting and ending with a letter or digit',
  );
const SpecPortName = z.string().regex(/^[a-z][a-z0-9-]{0,14}$/);
const PortNumber = z.number().int().min(1).max(65535);
const Millis = z.number().int().nonnegative();

export const PortProtocol = z.enum(['tcp', 'udp']);
export type PortProtocol = z.infer<typeof PortProtocol>;

/** A named container port. */
export const PortSpec = z.object({ name: SpecPortName, port: PortNumber, protocol: PortProtocol });
export type PortSpec = z.infer<typeof PortSpec>;

/**
 * `http`: the gateway sends requests whose Host is one of `hostnames` and whose path starts with
 * `path` (segment-wise: `/api` matches `/api` and `/api/x`, not `/apix`) to `port`.
 * `tcp`: the gateway listens on `listen` and forwards connections to `port`.
 * `port` is always resolved to a declared port name.
 */
export const RouteSpec = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('http'),
    hostnames: z.array(z.string()).min(1),
    path: z.string().startsWith('/'),
    port: SpecPortName,
    /**
     * `auto`: certificates for its hostnames come from the installation's ACME directory.
     * Omitted (never `undefined`) when not asked for, so older specs keep their revision ids.
     */
    tls: z.literal('auto').optional(),
    /** Plain HTTP is answered 308 to https; omitted when false. */
    https_redirect: z.literal(true).optional(),
  }),
  z.object({ kind: z.literal('tcp'), listen: PortNumber, port: SpecPortName }),
]);
export type RouteSpec = z.infer<typeof RouteSpec>;
export type HttpRouteSpec = Extract<RouteSpec, { kind: 'http' }>;
export type TcpRouteSpec = Extract<RouteSpec, { kind: 'tcp' }>;

const ReadinessTiming = {
  interval_ms: Millis,
  timeout_ms: Millis,
  /** Consecutive failures before the instance counts as not ready. */
  retries: z.number().int().min(1),
  /** Failures during this time after start do not count. */
  start_period_ms: Millis,
  /**
   * How long a starting instance has to pass its first check. Absent = the default
   * (MANIFEST_DEFAULTS.readiness_start_timeout); omitted rather than filled in, so specs written
   * before the field existed keep their revision ids.
   */
  start_timeout_ms: Millis.optional(),
};

export const ReadinessSpec = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('http'),
    path: z.string().startsWith('/'),
    port: SpecPortName,
    ...ReadinessTiming,
  }),
  z.object({ kind: z.literal('tcp'), port: SpecPortName, ...ReadinessTiming }),
  z.object({ kind: z.literal('exec'), command: z.array(z.string()).min(1), ...ReadinessTiming }),
]);
export type ReadinessSpec = z.infer<typeof ReadinessSpec>;

export const PlacementSpec = z.discriminatedUnion('mode', [
  z.object({
    mode: z.literal('replicated'),
    replicas: z.number().int().nonnegative(),
    regions: z.array(z.string()),
  }),
  z.object({ mode: z.literal('global'), regions: z.array(z.string()) }),
]);
export type PlacementSpec = z.infer<typeof PlacementSpec>;

export const MountSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('volume'), volume: SpecName, target: z.string(), read_only: z.boolean() }),
  z.object({
    kind: z.literal('tmpfs'),
    target: z.string(),
    size_bytes: z.number().int().positive().nullable(),
  }),
]);
export type MountSpec = z.infer<typeof MountSpec>;

export const ResourcesSpec = z.object({
  cpus: z.number().positive().nullable(),
  memory_bytes: z.number().int().positive().nullable(),
});
export type ResourcesSpec = z.infer<typeof ResourcesSpec>;

export const RestartPolicy = z.enum(['always', 'unless_stopped', 'on_failure', 'never']);
export type RestartPolicy = z.infer<typeof RestartPolicy>;

export const VolumeScope = z.enum(['single', 'per_slot']);
export type VolumeScope = z.infer<typeof VolumeScope>;

const serviceFields = {
  namespace: SpecName,
  name: SpecName,
  image: z.string().min(1),
  /**
   * For an image that names its registry: `always` pulls at every deploy that starts an instance,
   * `never` never pulls (the machine's own image or sent over the mesh). Omitted for the default
   * (`if_not_present`: pulled by a machine that lacks it), so specs written before the field
   * existed keep their revision ids.
   */
  pull_policy: z.enum(PULL_POLICIES).optional(),
  /** null: the image's default. */
  command: z.array(z.string()).nullable(),
  entrypoint: z.array(z.string()).nullable(),
  ports: z.array(PortSpec),
  routes: z.array(RouteSpec),
  /** null: ready as soon as the container runs. */
  readiness: ReadinessSpec.nullable(),
  placement: PlacementSpec,
  mounts: z.array(MountSpec),
  resources: ResourcesSpec,
  restart: RestartPolicy,
  stop_grace_ms: Millis,
};

/** A service with plaintext env, as parsed from a manifest. Never stored as is. */
export const ServiceSpec = z.object({ ...serviceFields, env: z.record(z.string(), z.string()) });
export type ServiceSpec = z.infer<typeof ServiceSpec>;

/**
 * One env value as stored: `mac` is a keyed HMAC-SHA256 of the plaintext (compare without
 * decrypting; stable across re-sealing), `box` is AES-256-GCM ciphertext (iv|ciphertext|tag,
 * base64url) under the installation key `kid`. See docs/adr/0002-sealed-secrets.md.
 */
export const SealedValue = z.object({
  kid: z.string().regex(/^[0-9a-f]{16}$/),
  mac: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  box: z.string().regex(/^[A-Za-z0-9_-]+$/),
});
export type SealedValue = z.infer<typeof SealedValue>;

/** A service spec as stored in a revision record: env values sealed, everything else plain. */
export const StoredServiceSpec = z.object({ ...serviceFields, env: z.record(z.string(), SealedValue) });
export type StoredServiceSpec = z.infer<typeof StoredServiceSpec>;

export const VolumeSpec = z.object({
  name: SpecName,
  /** null: no quota. */
  quota_bytes: z.number().int().positive().nullable(),
  /** single: one dataset, one writer, moved between machines by deploys; per_slot: one per slot. */
  scope: VolumeScope,
  /** Owner of the volume's root directory; null: copy up from the image (or root when empty). */
  owner: z.object({ uid: z.number().int().min(0), gid: z.number().int().min(0) }).nullable(),
  /** Permission bits of the volume's root directory; null: as copied up (or 0755). */
  mode: z.number().int().min(0).max(0o777).nullable(),
  /** Snapshots of committed deploys kept per volume. */
  keep_snapshots: z.number().int().min(1),
});
export type VolumeSpec = z.infer<typeof VolumeSpec>;

export const PhaseSpec = z.object({
  id: SpecName,
  services: z.array(SpecName),
  volumes: z.array(SpecName),
  after: z.array(SpecName),
  commit_policy: z.enum(['end_of_deploy', 'checkpoint']),
});
export type PhaseSpec = z.infer<typeof PhaseSpec>;

/** The id of the implicit phase holding every service and volume no declared phase lists. */
export const DEFAULT_PHASE_ID = 'default';

/**
 * A parsed manifest. `services` in declaration order; `phases` in a valid execution order
 * (every phase after the phases it names), each service and volume in exactly one phase.
 */
export const Manifest = z.object({
  namespace: SpecName,
  services: z.array(ServiceSpec),
  volumes: z.array(VolumeSpec),
  phases: z.array(PhaseSpec),
});
export type Manifest = z.infer<typeof Manifest>;
