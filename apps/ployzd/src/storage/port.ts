/**
 * The volume-driver port: one interface, three drivers (zfs.ts, btrfs.ts, dir.ts). A driver owns a
 * root (a ZFS dataset, a directory on a btrfs filesystem, a plain directory) and the volumes under
 * it, named `<namespace>/<volume>`. Every method validates its inputs as safe tokens (names.ts) and
 * runs tools with argument arrays, never a shell (exec.ts). Errors are PloyzErrors with STORAGE_*
 * codes (docs/errors.md).
 *
 * History is never destroyed: `revert` makes the reverted state the live one at the same mount path
 * and keeps every snapshot, older and newer, plus a snapshot of the state it replaced (`preRevert`),
 * so rolling back to an older snapshot and then to a newer one works.
 */

export type DriverKind = 'zfs' | 'btrfs' | 'dir';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CreateVolume {
  /** `<namespace>/<volume>`, each a DNS label. */
  name: string;
  /** Bytes the volume's own data may use (snapshots not counted); null: no quota. */
  quotaBytes: number | null;
  /** Owner of the volume's root directory. */
  owner: Owner;
  /** Permission bits of the volume's root directory, e.g. 0o750. */
  mode: number;
}

export interface CloneVolume {
  /** `<namespace>/<volume>` of the new volume. */
  name: string;
  /** Bytes the clone's own data may use; null: no quota. */
  quotaBytes: number | null;
}

export interface Volume {
  /** The driver's handle: ZFS dataset, or the subvolume/directory path (btrfs, dir). */
  dataset: string;
  /** Where the data is mounted; stays the same across reverts. */
  path: string;
}

export interface SnapshotInfo {
  /** The driver's stable id (ZFS guid, btrfs subvolume UUID): survives reverts, renames, promotes. */
  id: string;
  label: string;
  /** ISO 8601; the tools give seconds. */
  createdAt: string;
  /** Bytes the snapshot references. */
  bytes: number;
}

export interface Usage {
  /** Bytes of the live data (what a quota limits). */
  usedBytes: number;
  quotaBytes: number | null;
}

export interface RevertResult {
  /** The snapshot taken of the state the revert replaced: revert to it to undo. */
  preRevert: SnapshotInfo;
}

/** What `retire` kept of a removed volume (namespace rm --delete-volumes). */
export interface RetireResult {
  /** The final snapshot, labelled as asked; null when the driver cannot snapshot (dir). */
  snapshot: SnapshotInfo | null;
  /** Where the final copy now lives: a read-only subvolume (btrfs), a dataset (zfs), a directory (dir). */
  kept: string;
  /**
   * What `kept` holds and what removing it frees, in the operator's words: btrfs keeps only the
   * final read-only snapshot; zfs cannot keep a snapshot without its dataset, so it keeps the whole
   * dataset (every snapshot) unmounted; dir cannot snapshot, so it keeps the directory.
   */
  note: string;
}

export interface DriverCapabilities {
  snapshots: boolean;
  quota: boolean;
}

export interface ProbeResult {
  kind: DriverKind;
  /** Where volumes live: a dataset (zfs) or a directory. */
  root: string;
  /** e.g. `zfs-fuse` or `kernel` for zfs; the tool's version line for btrfs. */
  implementation: string;
  capabilities: DriverCapabilities;
}

export interface VolumeDriver {
  readonly kind: DriverKind;
  readonly capabilities: DriverCapabilities;
  /**
   * Checks that the tools are installed (STORAGE_TOOL_MISSING names the package) and the root is
   * usable; idempotent, and may prepare the root (btrfs: enables quotas; dir: creates the directory).
   */
  probe(): Promise<ProbeResult>;
  /** A new volume, mounted, with its quota, owner and mode. STORAGE_EXISTS if the name is taken. */
  create(spec: CreateVolume): Promise<Volume>;
  /** An existing volume by name (adopt-first), or undefined. */
  open(name: string): Promise<Volume | undefined>;
  /** A point-in-time, read-only copy. Labels are unique per volume (STORAGE_EXISTS). */
  snapshot(dataset: string, label: string): Promise<SnapshotInfo>;
  /** Every snapshot of the volume, oldest first, including those from before reverts. */
  snapshots(dataset: string): Promise<SnapshotInfo[]>;
  /**
   * Makes the snapshot's content the live data at the same path, keeping all snapshots. Writers
   * must be stopped first (zfs: STORAGE_BUSY if the dataset cannot be unmounted).
   */
  revert(dataset: string, snapshotId: string): Promise<RevertResult>;
  /**
   * A new volume `spec.name` whose data is the snapshot `snapshotId` of the volume `source`: copy-on-
   * write (zfs clone, btrfs snapshot), so nothing is copied and it is instant whatever the size;
   * writes to either never reach the other. Owner and mode are the snapshot's. STORAGE_EXISTS when
   * the name is taken, NOT_FOUND when `source` has no such snapshot.
   */
  clone(source: string, snapshotId: string, spec: CloneVolume): Promise<Volume>;
  /** The id of the snapshot the live data was cloned from (a branch, a revert), or null. */
  originOf(dataset: string): Promise<string | null>;
  /**
   * `revert` to another volume's snapshot (promote --with-data): the snapshot of `source` becomes
   * this volume's live data at the same path; every snapshot of this volume stays, and the state it
   * replaced is kept as `preRevert` (revert to it to undo). Writers must be stopped first.
   */
  replace(dataset: string, source: string, snapshotId: string): Promise<RevertResult>;
  /**
   * Removes one snapshot (retention). STORAGE_BUSY when something depends on it (zfs: a generation
   * cloned from it); NOT_FOUND when there is none with that id.
   */
  destroySnapshot(dataset: string, snapshotId: string): Promise<void>;
  /** Sets the quota; refuses (STORAGE_INVALID) a value below what is used. */
  growQuota(dataset: string, quotaBytes: number): Promise<Usage>;
  usage(dataset: string): Promise<Usage>;
  /** Removes the volume and all its snapshots. */
  destroy(dataset: string): Promise<void>;
  /**
   * Removes the volume from its path for good, keeping a final copy labelled `label` where an
   * operator finds it (RetireResult): the data is gone from the volume's path, the copy survives.
   */
  retire(dataset: string, label: string): Promise<RetireResult>;
}
