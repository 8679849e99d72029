/**
 * The narrow interfaces the apply orchestrator talks to. The daemon wires them to @ployz/store
 * (JetStream), the machine-command RPC and the clock; tests wire them to real servers, and an
 * in-memory store sits beside the real one for the orchestrator's pure-logic tests.
 */

import type { DeployReadiness, ImageEvent, VolumeDescribeResult } from '@ployz/protocol';
import type {
  DeployCommit,
  DeployStatusRecord,
  InstanceRecord,
  LeaseRecord,
  MachineRecord,
  Manifest,
  PhaseRecord,
  ReleaseRecord,
  RevisionRecord,
  RoutingEvent,
  StorageDriver,
  VolumeRecord,
  VolumeSpec,
} from '@ployz/types';
import type { StartedInstance, StartRequest, StopRequest } from '../workloads/start-request.ts';
import type { MachineCapacity } from './model/placement.ts';
import type { DeployManifest, DeployService } from './model/spec.ts';

// The participant's contract (workloads/): what the coordinator sends it, and the clock.
export { type Clock, systemClock } from '../workloads/clock.ts';
export type { StartedInstance, StartRequest, StopRequest } from '../workloads/start-request.ts';

/** A held lease. `renew` extends it (CAS); `release` gives it up (owner + nonce). */
export interface HeldLease {
  readonly record: LeaseRecord;
  renew(): Promise<void>;
  release(): Promise<void>;
}

/** A record and the store revision it was read or written at: the expected revision of its next write. */
export interface Versioned<T> {
  readonly value: T;
  readonly revision: number;
}

/**
 * Every KV write is compare-and-set: `expectedRevision` null creates (the record must not
 * exist), a number updates (or deletes) only a record still at that revision. A lost race is
 * `PloyzError('STORE_CONFLICT')`, never an overwrite. Writes return the record's new revision.
 */
export interface DeployStore {
  listMachines(): Promise<MachineRecord[]>;

  getStatus(deployId: string): Promise<Versioned<DeployStatusRecord> | null>;
  putStatus(record: DeployStatusRecord, expectedRevision: number | null): Promise<number>;
  listStatuses(namespace?: string): Promise<Versioned<DeployStatusRecord>[]>;
  /** Every stored deploy id (keys only, no records read), in any order. */
  listStatusIds(): Promise<string[]>;

  putPhase(record: PhaseRecord, expectedRevision: number | null): Promise<number>;
  listPhases(deployId: string): Promise<Versioned<PhaseRecord>[]>;

  /** Create-only with dedup: the identical commit twice is a no-op, a different one a conflict. */
  appendCommit(commit: DeployCommit): Promise<void>;
  listCommits(namespace: string): Promise<DeployCommit[]>;
  /** One commit by id (a direct read of its subject), or null. */
  getCommit(namespace: string, commitId: string): Promise<DeployCommit | null>;

  /** Content-addressed: put is idempotent (an existing id is left as it is). */
  putRevision(record: RevisionRecord): Promise<void>;
  getRevision(namespace: string, service: string, id: string): Promise<RevisionRecord | null>;

  /** Every namespace's releases when `namespace` is left out. */
  listReleases(namespace?: string): Promise<Versioned<ReleaseRecord>[]>;
  putRelease(record: ReleaseRecord, expectedRevision: number | null): Promise<number>;
  deleteRelease(namespace: string, service: string, expectedRevision: number): Promise<void>;

  listInstances(namespace?: string): Promise<Versioned<InstanceRecord>[]>;
  getInstance(namespace: string, service: string, id: string): Promise<Versioned<InstanceRecord> | null>;
  putInstance(record: InstanceRecord, expectedRevision: number | null): Promise<number>;
  /**
   * Deletes whatever is current (re-read and retried on a lost race): the facts loop may mark a
   * stopping instance's record, and removing it is the intent either way.
   */
  deleteInstance(record: InstanceRecord): Promise<void>;

  /** Acquire a lease; held by someone else (and not expired) → DEPLOY_LOCK_HELD. */
  acquireLease(key: string, owner: string, ttlMs: number, purpose: string): Promise<HeldLease>;
  getLease(key: string): Promise<LeaseRecord | null>;
  listLeases(): Promise<LeaseRecord[]>;
  /** Break a lease whose holder is known to be gone (CAS on the record read). */
  breakLease(record: LeaseRecord): Promise<void>;

  /** Appends events in this order, pipelined (about one round trip for all of them). */
  appendRoutingEvents(events: readonly RoutingEvent[]): Promise<void>;
}

/** The participant side: one machine's capacity, containers and readiness (RPC or local). */
export interface MachineAgent {
  /** Live capacity; throws RPC_NO_RESPONDERS / RPC_TIMEOUT when the machine does not answer. */
  capacity(machine: string): Promise<MachineCapacity>;
  start(request: StartRequest): Promise<StartedInstance>;
  /** Resolves once ready; throws DEPLOY_READINESS_FAILED when the probe gives up. */
  waitReady(
    machine: string,
    instance: StartedInstance,
    readiness: DeployReadiness | null,
    signal: AbortSignal,
  ): Promise<void>;
  /** Stops (grace, then kill) and removes; an already absent container is success. */
  stop(request: StopRequest): Promise<void>;
}

/**
 * Images without a registry (images/): the coordinating machine's own images, whether another
 * machine holds one (by id), and sending it there over the mesh.
 */
export interface ImageAgent {
  /** This machine's id and size of the image, or null when it does not hold it. */
  local(image: string): Promise<{ id: string; size: number } | null>;
  /** Whether `machine` holds the image (by id when given); throws when it does not answer. */
  has(machine: string, image: string, imageId: string | null): Promise<boolean>;
  /** Sends it; its progress as `image` events. IMAGE_TRANSFER_FAILED names the machine. */
  send(
    machine: string,
    image: string,
    local: { id: string; size: number },
    emit: (event: ImageEvent) => void,
    signal?: AbortSignal,
  ): Promise<void>;
  /**
   * An image that names its registry: `machine` pulls it itself (`always`: even when it holds
   * it), progress as `image` events; IMAGE_PULL_FAILED names the image and the machine.
   * Absent: registry images are treated as local ones.
   */
  pull?(
    machine: string,
    image: string,
    always: boolean,
    emit: (event: ImageEvent) => void,
    signal?: AbortSignal,
  ): Promise<void>;
  /** Whether the image's registry would serve it to `machine` (nothing pulled); throws when it does not answer. */
  pullCheck?(machine: string, image: string): Promise<{ available: boolean; detail: string }>;
}

/** How a service becomes a stored revision and back (sealing lives behind this). */
export interface RevisionCodec {
  revisionId(namespace: string, service: DeployService): string;
  toRecord(namespace: string, service: DeployService, at: string): RevisionRecord;
  /** `volumes`: the declarations its mounts refer to (a revision stores the service alone). */
  fromRecord(record: RevisionRecord, volumes?: readonly VolumeSpec[]): DeployService;
  /** A parsed manifest as the engine deploys it (a branch's or a promote's, built from records). */
  manifestOf(manifest: Manifest): DeployManifest;
}

/** A volume's identity on the wire: its name and, per slot, its slot (@ployz/protocol VolumeRef). */
export interface VolumeRefOf {
  volume: string;
  slot: number | null;
}

export interface TakenSnapshot extends VolumeRefOf {
  dataset: string;
  snapshot: { id: string; label: string; created_at: string; bytes: number };
}

/**
 * The volume commands of the machines that hold volumes (volume_* RPC), and the committed volume
 * records (`cp_volumes_<auth>`, compare-and-set like every KV write).
 */
export interface VolumeAgent {
  snapshot(
    machine: string,
    namespace: string,
    volumes: readonly VolumeRefOf[],
    label: string,
  ): Promise<{ driver: StorageDriver; snapshots: TakenSnapshot[] }>;
  revert(
    machine: string,
    namespace: string,
    ref: VolumeRefOf,
    snapshotId: string,
  ): Promise<{ preRevertId: string }>;
  /** Stops (not removes) the namespace's running workloads that mount the volume; their ids. */
  stopWriters(machine: string, namespace: string, ref: VolumeRefOf): Promise<string[]>;
  startWriters(machine: string, namespace: string, containers: readonly string[]): Promise<void>;
  /** Destroys snapshots retention no longer keeps; those that must stay come back with why. */
  prune(
    machine: string,
    namespace: string,
    ref: VolumeRefOf,
    snapshotIds: readonly string[],
  ): Promise<{ destroyed: string[]; kept: { id: string; reason: string }[] }>;
  /**
   * A new volume of `namespace` cloned (copy-on-write) from the snapshot of `from`'s volume, both
   * on `machine` (a branch); how long the storage took.
   */
  clone(
    machine: string,
    namespace: string,
    ref: VolumeRefOf,
    from: VolumeRefOf & { namespace: string; snapshotId: string },
    quotaBytes: number | null,
  ): Promise<{ dataset: string; tookMs: number }>;
  /** The live data of `namespace`'s volume replaced by `from`'s snapshot (promote --with-data). */
  replace(
    machine: string,
    namespace: string,
    ref: VolumeRefOf,
    from: VolumeRefOf & { namespace: string; snapshotId: string },
  ): Promise<{ preRevertId: string }>;
  /** Destroys a clone a failed branch made, only while nothing but the clone is in it; whether it did. */
  discard(machine: string, namespace: string, ref: VolumeRefOf, originSnapshotId: string): Promise<boolean>;
  /**
   * namespace rm --delete-volumes, after the commit: a final snapshot `label`, then the volume
   * leaves its path (the copy kept where `kept` says); `retired` false when it was gone already.
   */
  retire(
    machine: string,
    namespace: string,
    ref: VolumeRefOf,
    label: string,
  ): Promise<{ retired: boolean; kept: string | null; snapshotId: string | null; note: string }>;
  /** Forgets a volume's record (compare-and-set at `expectedRevision`). */
  deleteRecord(namespace: string, name: string, expectedRevision: number): Promise<void>;
  /** What the machine holding it says of a volume now (usage, owner, mode, snapshots). */
  describe(machine: string, namespace: string, ref: VolumeRefOf): Promise<VolumeDescribeResult>;
  listRecords(namespace?: string): Promise<Versioned<VolumeRecord>[]>;
  /** One record by its name (`<volume>` or `<volume>-<slot>`), or null: a direct read. */
  getRecord(namespace: string, name: string): Promise<Versioned<VolumeRecord> | null>;
  putRecord(record: VolumeRecord, expectedRevision: number | null): Promise<number>;
}
