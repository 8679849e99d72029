/**
 * The machine commands of a volume move (docs/adr/0021-volume-move-transfer.md), on
 * `…rpc.node.<machine>.<command>` like the other volume commands:
 * - on the target: `volume_receive_prepare` opens a one-use receive slot (a token valid for one
 *   connection, 60 s) bound to {volume, move, snapshot, base, expected guid, source machine};
 *   `volume_receive_commit` renames the verified copy into place; `volume_receive_abort` destroys
 *   what a move left there before its deploy committed;
 * - on the source: `volume_send` sends one pass to the target's transfer listener with that token
 *   and answers once the target verified it; `volume_mark_moved` renames the source copy
 *   `<volume>_moved_<move>` after the move's commit.
 * The stream itself never crosses RPC: it goes over the overlay to VOLUME_TRANSFER_PORT.
 */
import { DeployId, MachineId, ServiceSpec } from '@ployz/types';
import { z } from 'zod';
import { defineCommands } from './rpc.ts';
import { VolumeRef } from './volume-commands.ts';

/** The data-plane port of every ployzd's transfer listener, on its wg0 address only (guarded from workloads). */
export const VOLUME_TRANSFER_PORT = 7480;

export const VOLUME_MOVE_RPC = {
  prepare: 'volume_receive_prepare',
  send: 'volume_send',
  commit: 'volume_receive_commit',
  abort: 'volume_receive_abort',
  markMoved: 'volume_mark_moved',
} as const;

const SnapshotLabel = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a snapshot label');

const Move = {
  /** The machine the command is for. */
  machine: MachineId,
  namespace: ServiceSpec.shape.namespace,
  ...VolumeRef.shape,
  /** The move's deploy id: names the temporary copy `<volume>_incoming_<move>`. */
  move_id: DeployId,
};

/** The snapshot one pass carries; `base` is the previous pass's (null: the full, first pass). */
const Pass = { snapshot: SnapshotLabel, base: SnapshotLabel.nullable() };

export const VolumeReceivePrepareBody = z.strictObject({
  ...Move,
  ...Pass,
  /** The snapshot's guid (zfs) or uuid (btrfs) as the source reads it. */
  guid: z.string().min(1).max(128),
  /** The only machine whose overlay address may connect with the token. */
  source_machine: MachineId,
});
export type VolumeReceivePrepareBody = z.infer<typeof VolumeReceivePrepareBody>;

export const VolumeReceiveSlot = z.strictObject({
  /** 32 random bytes, base64url: handed to the source in volume_send, valid for one connection. */
  token: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  expires_at: z.iso.datetime(),
  /** The target's transfer listener: its overlay address and VOLUME_TRANSFER_PORT. */
  address: z.string().min(2).max(64),
  port: z.number().int().min(1).max(65535),
});
export type VolumeReceiveSlot = z.infer<typeof VolumeReceiveSlot>;

export const VolumeSendBody = z.strictObject({
  ...Move,
  ...Pass,
  token: VolumeReceiveSlot.shape.token,
  target: z.strictObject({
    machine: MachineId,
    address: VolumeReceiveSlot.shape.address,
    port: VolumeReceiveSlot.shape.port,
  }),
});
export type VolumeSendBody = z.infer<typeof VolumeSendBody>;

/** What the target verified one pass to be, checked by the source against what it sent. */
export const VolumeSendResult = z.strictObject({
  driver: z.enum(['zfs', 'btrfs']),
  snapshot: z.string(),
  base: z.string().nullable(),
  /** zfs: the received snapshot's guid; btrfs: its received uuid (equal to the sent one). */
  id: z.string(),
  bytes: z.number().int().nonnegative(),
  /** btrfs: the sha256 over the received tree (equal to the source's). */
  sha256: z.string().nullable(),
  elapsed_ms: z.number().nonnegative(),
  bytes_per_second: z.number().nonnegative(),
});
export type VolumeSendResult = z.infer<typeof VolumeSendResult>;

export const VolumeReceiveCommitBody = z.strictObject({
  ...Move,
  /** The last pass's snapshot: the data that becomes live. */
  snapshot: SnapshotLabel,
  quota_bytes: z.number().int().positive().nullable(),
});
export type VolumeReceiveCommitBody = z.infer<typeof VolumeReceiveCommitBody>;

export const VolumeMoveRef = z.strictObject(Move);
export type VolumeMoveRef = z.infer<typeof VolumeMoveRef>;

export const volumeMoveCommands = defineCommands({
  [VOLUME_MOVE_RPC.prepare]: {
    request: VolumeReceivePrepareBody,
    response: VolumeReceiveSlot,
    description: 'open a one-use 60 s receive slot for one pass of a volume move (on the target)',
  },
  [VOLUME_MOVE_RPC.send]: {
    request: VolumeSendBody,
    response: VolumeSendResult,
    description: "send one pass of a volume move to the target's transfer listener (on the source)",
  },
  [VOLUME_MOVE_RPC.commit]: {
    request: VolumeReceiveCommitBody,
    response: z.strictObject({ dataset: z.string() }),
    description: 'put the verified copy of a moved volume in place (on the target)',
  },
  [VOLUME_MOVE_RPC.abort]: {
    request: VolumeMoveRef,
    response: z.strictObject({ discarded: z.boolean() }),
    description: 'destroy what an uncommitted move left on the target',
  },
  [VOLUME_MOVE_RPC.markMoved]: {
    request: VolumeMoveRef,
    response: z.strictObject({ kept: z.string() }),
    description: 'after the move commit: rename the source copy <volume>_moved_<move> (kept until cleanup)',
  },
});
export type VolumeMoveCommands = typeof volumeMoveCommands;
