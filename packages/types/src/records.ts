/**
 * Durable records kept in NATS JetStream (DESIGN.md §4). Every record has a zod schema; the
 * store validates on read and write. Field names are snake_case because they are wire data.
 * Timestamps are RFC 3339 strings (UTC).
 */
import { z } from 'zod';
import { StoredServiceSpec, VolumeSpec } from './manifest-spec.ts';

export const Timestamp = z.iso.datetime({ offset: true });
/** DNS-label style name: namespaces, services, volumes, phases. */
export const Name = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, 'must be a DNS label: lowercase letters, digits and -');
export const MachineId = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9][a-z0-9-]*$/, 'machine ids are lowercase letters, digits and -');
export const DeployId = z.string().regex(/^dep-[0-9a-z]+$/, 'deploy ids look like dep-<time><random>');
export const RevisionId = z.string().regex(/^rev-[0-9a-f]{16,64}$/, 'revision ids look like rev-<hex>');
export const InstanceId = z.string().regex(/^[a-z0-9][a-z0-9-]*$/);
export const PortName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,14}$/, 'port names are lowercase, at most 15 characters');

// ---------------------------------------------------------------- machines

export const RegionRole = z.enum(['home_data', 'compute', 'draining', 'disabled']);
export type RegionRole = z.infer<typeof RegionRole>;
export const MachineLifecycle = z.enum(['joining', 'active', 'draining', 'removed']);
export type MachineLifecycle = z.infer<typeof MachineLifecycle>;

export const MachineRecord = z.object({
  id: MachineId,
  /** WireGuard public key, base64 (44 characters). */
  public_key: z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/, 'a base64 WireGuard public key'),
  /** Overlay IPv6 address derived from the public key. */
  overlay_ip: z.string(),
  /** The machine's IPv4 /24 for workload containers, e.g. 10.210.3.0/24. */
  subnet: z.string(),
  /** host:port where its WireGuard listens. */
  endpoints: z.array(z.string()),
  region: z.string().min(1),
  region_role: RegionRole,
  lifecycle: MachineLifecycle,
  /** The volume driver chosen at `machine init` and where its volumes live (absent: none recorded). */
  storage: z.object({ driver: z.enum(['zfs', 'btrfs', 'dir']), root: z.string() }).optional(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type MachineRecord = z.infer<typeof MachineRecord>;

/**
 * One issued invite (`invites_<installation>`, key = its nonce). Created when the token is
 * printed; a join moves it to `used` by compare-and-set, so a token joins at most one machine.
 */
export const InviteRecord = z.object({
  nonce: z.string().regex(/^[A-Za-z0-9_-]{22}$/, 'a 16-byte base64url nonce'),
  issuer: MachineId,
  region: z.string().min(1).nullable(),
  expires_at: Timestamp,
  state: z.enum(['issued', 'used']),
  used_by: MachineId.nullable(),
  used_at: Timestamp.nullable(),
  created_at: Timestamp,
});
export type InviteRecord = z.infer<typeof InviteRecord>;

/**
 * A workload /24 taken by a machine (`subnets_<installation>`, key = the subnet's base address).
 * Created by compare-and-set at join, so two joins never hold the same /24.
 */
export const SubnetClaim = z.object({
  subnet: z.string().regex(/^\d{1,3}\.\d{1,3}\.\d{1,3}\.0\/24$/, 'an IPv4 /24 like 10.210.3.0/24'),
  machine: MachineId,
  claimed_at: Timestamp,
});
export type SubnetClaim = z.infer<typeof SubnetClaim>;

// ---------------------------------------------------------------- revisions and releases

/**
 * A content-addressed service revision. `spec` is the manifest's normalised ServiceSpec with env
 * values sealed (`StoredServiceSpec`, @ployz/identity `sealSpec`; docs/adr/0002-sealed-secrets.md):
 * enough to rebuild the service, to compare, and for routing to read `spec.routes` typed.
 *
 * Read validation is strict, with no compatibility shapes: a stored spec that is not a
 * StoredServiceSpec fails the store's read as STORE_CORRUPT (`revisions/<key> does not match
 * its schema`, the issues under `spec.…`; in the routing stream, `routing event <seq> does not
 * match its schema`). Every ployzd that ever wrote a revision wrote `sealSpec`'s output: the
 * sealed codec and the manifest adapter landed together, before the daemon plugin that runs
 * them, and the one field added since (`readiness.start_timeout_ms`) is optional. The other
 * route shapes routing used to accept (`{ http: {...} }`, flat `{ hostnames | host }`) were only
 * ever written by test fixtures, so reading them would keep three shapes alive for no record.
 * A spec shape change that existing records do not satisfy needs a migration, not a looser schema.
 */
export const RevisionRecord = z.object({
  id: RevisionId,
  namespace: Name,
  service: Name,
  spec: StoredServiceSpec,
  created_at: Timestamp,
});
export type RevisionRecord = z.infer<typeof RevisionRecord>;

export const SlotAssignment = z.object({
  slot: z.number().int().nonnegative(),
  machine: MachineId,
  instance: InstanceId,
});
export type SlotAssignment = z.infer<typeof SlotAssignment>;

/** Per service: the committed current revision and which instance is active in each slot. */
export const ReleaseRecord = z.object({
  namespace: Name,
  service: Name,
  revision: RevisionId,
  deploy: DeployId,
  slots: z.array(SlotAssignment),
  updated_at: Timestamp,
});
export type ReleaseRecord = z.infer<typeof ReleaseRecord>;

// ---------------------------------------------------------------- instances

export const InstanceState = z.enum(['starting', 'running', 'stopping', 'stopped', 'failed']);
export type InstanceState = z.infer<typeof InstanceState>;

export const InstanceRecord = z.object({
  id: InstanceId,
  namespace: Name,
  service: Name,
  slot: z.number().int().nonnegative(),
  machine: MachineId,
  revision: RevisionId,
  deploy: DeployId,
  container_id: z.string().nullable(),
  /** Address reachable over the overlay (the container's bridge IP on its machine's subnet). */
  ip: z.string().nullable(),
  ip6: z.string().nullable().default(null),
  /** Named ports: name → container port. */
  ports: z.record(z.string(), z.number().int().min(1).max(65535)),
  state: InstanceState,
  ready: z.boolean(),
  draining: z.boolean(),
  error: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
});
export type InstanceRecord = z.infer<typeof InstanceRecord>;

// ---------------------------------------------------------------- deploys

/** One spelling, used everywhere (seed 003/004). */
export const DeployState = z.enum([
  'planning',
  'applying',
  'checkpoint_committed',
  'committed',
  'failed',
  'FailedAfterCheckpoint',
]);
export type DeployState = z.infer<typeof DeployState>;

export const CommitPolicy = z.enum(['end_of_deploy', 'checkpoint']);
export type CommitPolicy = z.infer<typeof CommitPolicy>;

/**
 * What a record or a status view keeps of an error: its code and message. `code` is a string, not
 * ErrorCode, so a record written by a newer daemon with a code this one lacks still reads.
 */
export const ErrorSummary = z.object({ code: z.string(), message: z.string() });
export type ErrorSummary = z.infer<typeof ErrorSummary>;

export const DeployStatusRecord = z.object({
  deploy_id: DeployId,
  namespace: Name,
  state: DeployState,
  manifest_hash: z.string(),
  phases: z.array(z.string()),
  commits: z.array(z.string()),
  /** Set when this deploy is a rollback to an earlier one. */
  rollback_of: DeployId.nullable().default(null),
  actor: z.string(),
  /** The step the apply reached (1–9), for operators and for crash recovery. */
  step: z.number().int().min(0).max(9),
  error: ErrorSummary.nullable(),
  started_at: Timestamp,
  updated_at: Timestamp,
});
export type DeployStatusRecord = z.infer<typeof DeployStatusRecord>;

export const PhaseState = z.enum(['pending', 'running', 'done', 'committed', 'failed']);
export type PhaseState = z.infer<typeof PhaseState>;

export const PhaseWork = z.object({
  kind: z.enum(['start', 'stop', 'move_volume', 'stop_writer']),
  service: z.string().optional(),
  volume: z.string().optional(),
  slot: z.number().int().optional(),
  machine: MachineId.optional(),
  instance: InstanceId.optional(),
});
export type PhaseWork = z.infer<typeof PhaseWork>;

export const PhaseRecord = z.object({
  deploy_id: DeployId,
  phase: z.string(),
  index: z.number().int().nonnegative(),
  commit_policy: CommitPolicy,
  services: z.array(Name),
  volumes: z.array(Name),
  work: z.array(PhaseWork),
  state: PhaseState,
  /** The commit that made this phase's facts durable (checkpoint or final). */
  commit_id: z.string().nullable(),
  error: ErrorSummary.nullable(),
  updated_at: Timestamp,
});
export type PhaseRecord = z.infer<typeof PhaseRecord>;

export const CommittedService = z.object({
  service: Name,
  revision: RevisionId,
  slots: z.array(SlotAssignment),
  /** Branch lineage: which source revision this target came from, when known. */
  source_revision: RevisionId.nullable().default(null),
});
export type CommittedService = z.infer<typeof CommittedService>;

/**
 * A volume move's evidence in the commit that moved its ownership (ADR 0021): from and to which
 * machine, the verified last pass's snapshot and its guid (zfs) or received uuid (btrfs), and the
 * bytes both passes carried. The commit's deploy_id and phase say which deploy and phase moved it.
 */
export const VolumeMovement = z.object({
  volume: Name,
  /** The slot of a per-slot volume; null for a single one. */
  slot: z.number().int().nonnegative().nullable().default(null),
  from_machine: MachineId.nullable(),
  to_machine: MachineId,
  driver: z.enum(['zfs', 'btrfs']),
  snapshot: z.string(),
  guid: z.string(),
  bytes: z.number().int().nonnegative(),
  verified: z.literal(true),
});
export type VolumeMovement = z.infer<typeof VolumeMovement>;

/** An immutable deploy commit: a point of no return for the facts it contains. */
export const StorageDriver = z.enum(['zfs', 'btrfs', 'dir']);
export type StorageDriver = z.infer<typeof StorageDriver>;

/** One snapshot of one volume (per slot), as a commit records it. */
export const CommitSnapshot = z.object({
  volume: Name,
  slot: z.number().int().nonnegative().nullable(),
  machine: MachineId,
  driver: StorageDriver,
  /** Dataset name (zfs) or subvolume path (btrfs). */
  dataset: z.string(),
  /** The driver's stable id (ZFS guid, btrfs subvolume UUID). */
  id: z.string(),
  /** The deploy id it was taken for. */
  label: z.string(),
  at: Timestamp,
  bytes: z.number().int().nonnegative(),
});
export type CommitSnapshot = z.infer<typeof CommitSnapshot>;

/**
 * Branch lineage (seeds 003/004): where a branch's or a promote's services and volumes came from.
 * `from_namespace` is the source of a branch, and the branch a promote deploys from.
 */
export const LineageService = z.object({
  service: Name,
  /** The revision of `from_namespace` this service came from; null for a service only the branch manifest has. */
  from_revision: RevisionId.nullable(),
  /** The deploy that committed that revision there; null with `from_revision`. */
  from_deploy: DeployId.nullable(),
  /** The spec came from the branch manifest (`-f`), not from the revision. */
  overridden: z.boolean(),
});
export type LineageService = z.infer<typeof LineageService>;

export const LineageVolume = z.object({
  volume: Name,
  slot: z.number().int().nonnegative().nullable(),
  /**
   * clone: a copy-on-write clone of `snapshot`; empty: a new, empty volume; replaced: (promote
   * --with-data) the live data replaced by `snapshot`, the previous data kept as a snapshot;
   * kept: (promote) the target keeps its own data.
   */
  data: z.enum(['clone', 'empty', 'replaced', 'kept']),
  /** The snapshot of `from_namespace`'s volume the data came from (clone, replaced). */
  snapshot: CommitSnapshot.nullable(),
  /** replaced: the target's own data just before, kept as this snapshot (`<deploy>-pre`). */
  previous: CommitSnapshot.nullable().default(null),
});
export type LineageVolume = z.infer<typeof LineageVolume>;

export const Lineage = z.object({
  kind: z.enum(['branch', 'promote']),
  from_namespace: Name,
  /** The newest deploy of `from_namespace` whose commit the state came from. */
  from_deploy: DeployId,
  /** A branch's `--host-suffix` (its hostnames are the source's with it in front); null: none. */
  host_suffix: z.string().nullable(),
  services: z.array(LineageService),
  volumes: z.array(LineageVolume),
});
export type Lineage = z.infer<typeof Lineage>;

export const DeployCommit = z.object({
  id: z.string().min(1),
  deploy_id: DeployId,
  namespace: Name,
  kind: z.enum(['checkpoint', 'final']),
  phase: z.string().nullable(),
  manifest_hash: z.string(),
  services: z.array(CommittedService),
  removed_services: z.array(Name),
  volume_movements: z.array(VolumeMovement).default([]),
  /** The declarations of the volumes this commit covers (a rollback to it restores them). */
  volumes: z.array(VolumeSpec).default([]),
  /** Snapshots taken at this commit, one per volume (per slot) it covers on a snapshot-capable driver. */
  snapshots: z.array(CommitSnapshot).default([]),
  /** A rollback's restored snapshots: the volumes reverted before its candidates started. */
  reverted: z.array(CommitSnapshot).default([]),
  rollback_of: DeployId.nullable().default(null),
  /** Set on every commit of a branch or a promote: where its services and volumes came from. */
  lineage: Lineage.nullable().default(null),
  actor: z.string(),
  created_at: Timestamp,
});
export type DeployCommit = z.infer<typeof DeployCommit>;

// ---------------------------------------------------------------- volumes

export const VolumeSnapshotRecord = z.object({
  deploy_id: DeployId,
  commit_id: z.string(),
  id: z.string(),
  at: Timestamp,
  bytes: z.number().int().nonnegative(),
});
export type VolumeSnapshotRecord = z.infer<typeof VolumeSnapshotRecord>;

/**
 * A volume (per slot: one record per slot, named `<volume>-<slot>`) as committed facts know it:
 * where it lives and every snapshot a commit took of it, oldest first.
 */
export const VolumeRecord = z.object({
  namespace: Name,
  /** `<volume>` or `<volume>-<slot>`: the record's key. */
  name: Name,
  volume: Name,
  slot: z.number().int().nonnegative().nullable(),
  scope: z.enum(['single', 'per_slot']),
  machine: MachineId,
  driver: StorageDriver,
  /** Dataset name (zfs), subvolume or directory path. */
  dataset: z.string(),
  quota_bytes: z.number().int().positive().nullable(),
  owner: z.object({ uid: z.number().int(), gid: z.number().int() }).nullable(),
  mode: z.number().int().nullable(),
  keep_snapshots: z.number().int().min(1),
  created_by: DeployId,
  status: z.enum(['active']),
  snapshots: z.array(VolumeSnapshotRecord),
  /**
   * A deploy that stopped this volume's writers (stop-first) or reverted it (rollback) and has not
   * reached its final commit: `pre_snapshot` is the state to restore (a snapshot the deploy took,
   * labelled `<deploy>-pre`) when it fails or its daemon dies before the commit; null when only
   * writers were stopped. Cleared at the final commit and by the undo.
   */
  pending: z.object({ deploy_id: DeployId, pre_snapshot: z.string().nullable() }).nullable().default(null),
  updated_at: Timestamp,
});
export type VolumeRecord = z.infer<typeof VolumeRecord>;

// ---------------------------------------------------------------- leases

export const LeaseRecord = z.object({
  key: z.string(),
  owner: z.string(),
  nonce: z.string(),
  purpose: z.string(),
  acquired_at: Timestamp,
  expires_at: Timestamp,
});
export type LeaseRecord = z.infer<typeof LeaseRecord>;

// ---------------------------------------------------------------- routing events

const EventBase = { deploy_id: DeployId.nullable(), at: Timestamp };

/** Ordered routing facts derived from commits; each carries the full record it sets. */
export const RoutingEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('machine_upserted'), machine: MachineRecord, ...EventBase }),
  z.object({ type: z.literal('machine_removed'), machine_id: MachineId, ...EventBase }),
  z.object({ type: z.literal('revision_stored'), revision: RevisionRecord, ...EventBase }),
  z.object({ type: z.literal('release_committed'), release: ReleaseRecord, ...EventBase }),
  z.object({ type: z.literal('release_removed'), namespace: Name, service: Name, ...EventBase }),
  z.object({ type: z.literal('instance_upserted'), instance: InstanceRecord, ...EventBase }),
  z.object({ type: z.literal('instance_removed'), instance_id: InstanceId, ...EventBase }),
]);
export type RoutingEvent = z.infer<typeof RoutingEvent>;
export type RoutingEventType = RoutingEvent['type'];

/** What a projection is built from: the durable records at one stream sequence. */
export interface RoutingSnapshot {
  /** Last routing-event sequence already reflected in these records (0 when none). */
  seq: number;
  machines: MachineRecord[];
  revisions: RevisionRecord[];
  releases: ReleaseRecord[];
  instances: InstanceRecord[];
}

/** One routing event as stored, with its stream sequence. */
export interface SequencedRoutingEvent {
  seq: number;
  event: RoutingEvent;
}

/**
 * What the routing follower reads (implemented by @ployz/store). `snapshot()` returns records
 * consistent with `seq`; `follow()` yields events with seq > fromSeq in order and throws a
 * PloyzError when it cannot continue without a rebuild (gap, consumer lost, server restart),
 * after which the follower takes a new snapshot.
 */
export interface RoutingFeed {
  snapshot(): Promise<RoutingSnapshot>;
  follow(fromSeq: number, signal: AbortSignal): AsyncIterable<SequencedRoutingEvent>;
  /** Last sequence in the stream right now, for lag; null when the store is unreachable. */
  lastSeq(): Promise<number | null>;
}
