/**
 * The volume commands a machine answers for the volumes it holds (`volume_snapshot`,
 * `volume_revert`, `volume_stop_writers`, `volume_start_writers`, `volume_describe`, `volume_prune`,
 * and for branches `volume_clone`, `volume_replace`, `volume_discard` on
 * `…rpc.node.<machine>.<command>`): the deploy engine snapshots at each commit, reverts on a
 * rollback and clones for a branch through them. Volumes are named, never host paths: `<volume>` or, per slot, the
 * volume and its slot; the participant resolves them under its own storage. Every body names the
 * machine it is for.
 */
import { MachineId, ServiceSpec, VolumeRecord, VolumeSpec } from '@ployz/types';
import { z } from 'zod';
import { defineCommands } from './rpc.ts';

export const VOLUME_RPC = {
  snapshot: 'volume_snapshot',
  revert: 'volume_revert',
  stopWriters: 'volume_stop_writers',
  startWriters: 'volume_start_writers',
  describe: 'volume_describe',
  prune: 'volume_prune',
  clone: 'volume_clone',
  replace: 'volume_replace',
  discard: 'volume_discard',
  retire: 'volume_retire',
} as const;

/** One volume of a namespace on one machine: a single volume (slot null) or one slot's. */
export const VolumeRef = z.strictObject({
  volume: VolumeSpec.shape.name,
  slot: z.number().int().nonnegative().nullable(),
});
export type VolumeRef = z.infer<typeof VolumeRef>;

/** A volume's name on its machine and in its record: `<volume>`, or per slot `<volume>-<slot>`. */
export function volumeNameOf(volume: string, slot: number | null): string {
  return slot === null ? volume : `${volume}-${slot}`;
}

const Target = { machine: MachineId, namespace: ServiceSpec.shape.namespace };

export const VolumeSnapshotBody = z.strictObject({
  ...Target,
  volumes: z.array(VolumeRef).min(1).max(1000),
  /**
   * The deploy whose commit the snapshot belongs to (`<deploy id>`), or the state a deploy may
   * have to restore (`<deploy id>-pre`); a snapshot already taken under it is returned again.
   */
  label: z
    .string()
    .regex(
      /^dep-[0-9a-z]+(-pre|-promote|-bulk|-cutover)?$/,
      'a deploy id, optionally with -pre, -promote, or a move pass -bulk / -cutover',
    ),
});
export type VolumeSnapshotBody = z.infer<typeof VolumeSnapshotBody>;

export const DriverKind = z.enum(['zfs', 'btrfs', 'dir']);
export type DriverKind = z.infer<typeof DriverKind>;

export const VolumeSnapshotView = z.strictObject({
  /** The driver's stable id (ZFS guid, btrfs subvolume UUID). */
  id: z.string(),
  label: z.string(),
  created_at: z.string(),
  bytes: z.number().int().nonnegative(),
});
export type VolumeSnapshotView = z.infer<typeof VolumeSnapshotView>;

export const VolumeSnapshotResult = z.strictObject({
  driver: DriverKind,
  /** Empty on a driver without snapshots (dir): its data does not revert. */
  snapshots: z.array(VolumeRef.extend({ dataset: z.string(), snapshot: VolumeSnapshotView })),
});
export type VolumeSnapshotResult = z.infer<typeof VolumeSnapshotResult>;

export const VolumeRevertBody = z.strictObject({
  ...Target,
  ...VolumeRef.shape,
  snapshot_id: z.string().min(1).max(128),
});
export type VolumeRevertBody = z.infer<typeof VolumeRevertBody>;

export const VolumeRevertResult = z.strictObject({
  /** The state the revert replaced, kept as a snapshot: revert to it to undo. */
  pre_revert: VolumeSnapshotView,
});

export const VolumeWritersBody = z.strictObject({ ...Target, ...VolumeRef.shape });
export type VolumeWritersBody = z.infer<typeof VolumeWritersBody>;

/** Container ids (hex). */
const ContainerIds = z.array(z.string().regex(/^[0-9a-f]{12,64}$/)).max(1000);

export const VolumeStartWritersBody = z.strictObject({ ...Target, containers: ContainerIds });
export type VolumeStartWritersBody = z.infer<typeof VolumeStartWritersBody>;

export const VolumePruneBody = z.strictObject({
  ...Target,
  ...VolumeRef.shape,
  snapshot_ids: z.array(z.string().min(1).max(128)).min(1).max(1000),
});
export type VolumePruneBody = z.infer<typeof VolumePruneBody>;

export const VolumePruneResult = z.strictObject({
  /** Gone now (an id already gone counts). */
  destroyed: z.array(z.string()),
  /** Still there, with why (zfs: a generation was cloned from it). */
  kept: z.array(z.strictObject({ id: z.string(), reason: z.string() })),
});
export type VolumePruneResult = z.infer<typeof VolumePruneResult>;

export const VolumeDescribeResult = z.strictObject({
  driver: DriverKind,
  exists: z.boolean(),
  dataset: z.string().nullable(),
  used_bytes: z.number().int().nonnegative().nullable(),
  quota_bytes: z.number().int().nonnegative().nullable(),
  owner: z.strictObject({ uid: z.number().int(), gid: z.number().int() }).nullable(),
  mode: z.number().int().nullable(),
  snapshots: z.array(VolumeSnapshotView),
});
export type VolumeDescribeResult = z.infer<typeof VolumeDescribeResult>;

/** A volume of another namespace on the same machine: where a branch's or a promote's data comes from. */
export const VolumeSource = z.strictObject({
  namespace: ServiceSpec.shape.namespace,
  ...VolumeRef.shape,
  /** The driver's id of the source volume's snapshot (ZFS guid, btrfs subvolume UUID). */
  snapshot_id: z.string().min(1).max(128),
});
export type VolumeSource = z.infer<typeof VolumeSource>;

/**
 * A new volume of `namespace` whose data is a copy-on-write clone of the source's snapshot (zfs
 * clone, btrfs snapshot: instant whatever the size; writes to either never reach the other). A
 * volume of that name that is already a clone of that snapshot with no snapshot of its own (left
 * by a branch that died before its commit) is made again; any other is STORAGE_EXISTS.
 */
export const VolumeCloneBody = z.strictObject({
  ...Target,
  ...VolumeRef.shape,
  from: VolumeSource,
  /** The new volume's quota; null: none. */
  quota_bytes: z.number().int().positive().nullable(),
});
export type VolumeCloneBody = z.infer<typeof VolumeCloneBody>;

export const VolumeCloneResult = z.strictObject({
  driver: DriverKind,
  dataset: z.string(),
  /** How long the storage took to make the clone. */
  took_ms: z.number().nonnegative(),
});
export type VolumeCloneResult = z.infer<typeof VolumeCloneResult>;

/**
 * Makes another volume's snapshot the live data of this one (promote --with-data), keeping every
 * snapshot of this one and the replaced state as a snapshot (`pre_revert`): revert to it to undo.
 */
export const VolumeReplaceBody = z.strictObject({ ...Target, ...VolumeRef.shape, from: VolumeSource });
export type VolumeReplaceBody = z.infer<typeof VolumeReplaceBody>;

/**
 * Destroys a volume a failed branch cloned: only when it is still a clone of `snapshot_id` with
 * no snapshot of its own (nothing committed it); a volume that is anything else is left alone.
 */
export const VolumeDiscardBody = z.strictObject({
  ...Target,
  ...VolumeRef.shape,
  origin_snapshot_id: z.string().min(1).max(128),
});
export type VolumeDiscardBody = z.infer<typeof VolumeDiscardBody>;

/**
 * namespace rm --delete-volumes, after its commit: a final snapshot labelled `label`
 * (`<deploy>-final`), then the volume leaves its path; the final copy is kept where `kept` says.
 */
export const VolumeRetireBody = z.strictObject({
  ...Target,
  ...VolumeRef.shape,
  label: z.string().min(1).max(128),
});
export type VolumeRetireBody = z.infer<typeof VolumeRetireBody>;

export const VolumeRetireResult = z.strictObject({
  /** False when the machine holds no such volume (retired already). */
  retired: z.boolean(),
  /** Where the final copy lives (a read-only subvolume, an unmounted dataset, a directory). */
  kept: z.string().nullable(),
  /** The final snapshot's id; null for the dir driver (no snapshots). */
  snapshot_id: z.string().nullable(),
  /** What is kept and how to free it, in the operator's words. */
  note: z.string(),
});
export type VolumeRetireResult = z.infer<typeof VolumeRetireResult>;

export const volumeCommands = defineCommands({
  [VOLUME_RPC.snapshot]: {
    request: VolumeSnapshotBody,
    response: VolumeSnapshotResult,
    description: 'snapshot volumes of a namespace held by this machine, labelled with a deploy id',
  },
  [VOLUME_RPC.revert]: {
    request: VolumeRevertBody,
    response: VolumeRevertResult,
    description: "make a snapshot the volume's live data, keeping every snapshot (writers stopped first)",
  },
  [VOLUME_RPC.stopWriters]: {
    request: VolumeWritersBody,
    response: z.strictObject({ stopped: ContainerIds }),
    description: 'stop (not remove) the running workloads of the namespace that mount the volume',
  },
  [VOLUME_RPC.startWriters]: {
    request: VolumeStartWritersBody,
    response: z.strictObject({ started: ContainerIds }),
    description: 'start again workloads stopped by volume_stop_writers',
  },
  [VOLUME_RPC.prune]: {
    request: VolumePruneBody,
    response: VolumePruneResult,
    description: 'destroy snapshots retention no longer keeps',
  },
  [VOLUME_RPC.describe]: {
    request: VolumeWritersBody,
    response: VolumeDescribeResult,
    description: "a volume's dataset, usage, owner, mode and snapshots on this machine",
  },
  [VOLUME_RPC.clone]: {
    request: VolumeCloneBody,
    response: VolumeCloneResult,
    description: "a new volume as a copy-on-write clone of another namespace's snapshot (a branch)",
  },
  [VOLUME_RPC.replace]: {
    request: VolumeReplaceBody,
    response: VolumeRevertResult,
    description: "make another volume's snapshot this volume's live data (promote --with-data)",
  },
  [VOLUME_RPC.discard]: {
    request: VolumeDiscardBody,
    response: z.strictObject({ discarded: z.boolean() }),
    description: 'destroy a clone a failed branch made, if nothing committed it',
  },
  [VOLUME_RPC.retire]: {
    request: VolumeRetireBody,
    response: VolumeRetireResult,
    description:
      'remove a volume of a removed namespace, keeping a final snapshot (namespace rm --delete-volumes)',
  },
});
export type VolumeCommands = typeof volumeCommands;

// ---------------------------------------------------------------- local API (ployzctl volume …)

export const VolumeListQuery = z.object({ namespace: ServiceSpec.shape.namespace.optional() });
export const VolumeList = z.looseObject({ volumes: z.array(VolumeRecord) });
export type VolumeList = z.infer<typeof VolumeList>;

export const VolumeShowQuery = z.object({
  namespace: ServiceSpec.shape.namespace,
  /** The volume's name, `<name>-<slot>` for a per-slot one (a DNS label either way). */
  name: ServiceSpec.shape.name,
});
export const VolumeShowView = z.looseObject({
  record: VolumeRecord,
  /** What the volume's machine says now; null with `live_error` when it does not answer. */
  live: VolumeDescribeResult.nullable(),
  live_error: z.string().nullable(),
});
export type VolumeShowView = z.infer<typeof VolumeShowView>;
