/**
 * What a volume move needs of a machine's volume driver (ADR 0021), one implementation per driver
 * with a send stream (zfs-move.ts, btrfs-move.ts; dir has none, so a dir volume cannot move). The
 * source side names a snapshot's stream and identity; the target side receives into a temporary copy
 * `<volume>_incoming_<move>` that no volume lookup sees (`_` is no DNS-label character), checks what
 * arrived, discards it, or renames it into place; after the move's commit the source copy is renamed
 * `<volume>_moved_<move>` and kept until cleanup.
 */
import type { Readable } from 'node:stream';
import { PloyzError } from '@ployz/types';
import type { Tool } from '../storage/exec.ts';
import { checkSnapshotLabel, parseVolumeName, type VolumeName } from '../storage/names.ts';
import type { Volume } from '../storage/port.ts';

export type MoveDriver = 'zfs' | 'btrfs';

export interface SourceStream {
  /** zfs: the snapshot's guid; btrfs: the read-only snapshot's uuid. */
  id: string;
  /** btrfs: the sha256 over the snapshot's tree (tree-hash.ts). */
  sha256?: string;
  /** The send command (`zfs send [-i base] gen@snap`, `btrfs send [-p base] snap`). */
  tool: Tool;
  args: string[];
}

export interface ReceivedSnapshot {
  /** zfs: the received snapshot's guid; btrfs: its received uuid (null until a receive completes). */
  id: string | null;
  /** btrfs: the sha256 over the received tree. */
  sha256?: string;
}

export interface MoveStorage {
  readonly kind: MoveDriver;
  // Source side.
  /** The stream of `snapshot` (incremental from `base` when given) of the volume `name`. */
  sourceStream(name: VolumeName, snapshot: string, base: string | null): Promise<SourceStream>;
  /** After the move's commit: the source copy is renamed `<volume>_moved_<move>` (writers stopped). */
  markMoved(name: VolumeName, moveId: string): Promise<{ kept: string }>;
  // Target side.
  /**
   * Before a receive slot is issued: STORAGE_EXISTS when the volume is here already; a full pass
   * (`base` null) removes a leftover temporary copy of the same move (a crash), an incremental one
   * needs that copy with `base` received (NOT_FOUND).
   */
  checkReceive(name: VolumeName, moveId: string, base: string | null): Promise<void>;
  /** Runs the receive tool into the temporary copy, reading `input` to its end. */
  receive(name: VolumeName, moveId: string, base: string | null, input: Readable): Promise<void>;
  received(name: VolumeName, moveId: string, snapshot: string): Promise<ReceivedSnapshot>;
  /** Removes the temporary copy, whatever it holds; nothing when there is none. */
  discard(name: VolumeName, moveId: string): Promise<void>;
  /** Whether a temporary copy of the move exists (tests, cleanup). */
  hasTemporary(name: VolumeName, moveId: string): Promise<boolean>;
  /**
   * The "rename into place" step: the temporary copy becomes the volume `name` with `snapshot`'s
   * data live at the driver's usual path (the driver's open() finds it, snapshots() lists the
   * received ones), quota as given.
   */
  commit(name: VolumeName, moveId: string, snapshot: string, quotaBytes: number | null): Promise<Volume>;
}

const MOVE_ID = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;

/** A move id (the deploy's id) as it appears in dataset and directory names. */
export function checkMoveId(moveId: string): string {
  if (!MOVE_ID.test(moveId)) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `move id ${JSON.stringify(moveId)} must be 1-64 letters, digits, '.' or '-', starting with a letter or digit`,
      { details: { moveId } },
    );
  }
  return moveId;
}

/** Everything a transfer names, checked before any tool sees it. */
export function checkTransfer(
  volume: string,
  moveId: string,
  snapshot: string,
  base: string | null,
): VolumeName {
  const name = parseVolumeName(volume);
  checkMoveId(moveId);
  checkSnapshotLabel(snapshot);
  if (base !== null) checkSnapshotLabel(base);
  return name;
}

/** The target holds the volume already (STORAGE_EXISTS): a move never overwrites one. */
export function alreadyHere(name: VolumeName): PloyzError {
  return new PloyzError('STORAGE_EXISTS', `volume ${name.full} exists on this machine already`, {
    details: { volume: name.full },
  });
}

/** No received copy at `snapshot` (NOT_FOUND): an increment without its full pass, a commit without a pass. */
export function noReceivedCopy(name: VolumeName, snapshot: string, increment: boolean): PloyzError {
  return new PloyzError(
    'NOT_FOUND',
    increment
      ? `no received copy of ${name.full} at ${snapshot} to apply an increment to: send the full pass first`
      : `no received copy of ${name.full} at ${snapshot} to put in place`,
    { details: { volume: name.full, snapshot } },
  );
}

export const incomingName = (volume: string, moveId: string) => `${volume}_incoming_${moveId}`;
export const movedName = (volume: string, moveId: string) => `${volume}_moved_${moveId}`;
