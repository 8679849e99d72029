/**
 * The machine side of @ployz/protocol's `volumeMoveCommands` (ADR 0021): on the target,
 * `volume_receive_prepare` opens a slot on this machine's transfer listener (bound to its overlay
 * address, in the netns that holds wg0) for one pass from the named source machine, whose overlay
 * address comes from its machine record (never from the caller); `volume_receive_commit` checks that
 * the slot's last pass verified before renaming the copy into place; `volume_receive_abort` destroys
 * what an uncommitted move left. On the source, `volume_send` sends a pass from this machine's
 * overlay address and `volume_mark_moved` renames the source copy after the move's commit.
 * Every body must name this machine (RPC_WRONG_MACHINE).
 */
import type { CommandHandlers, VolumeMoveRef, volumeMoveCommands } from '@ployz/protocol';
import { VOLUME_TRANSFER_PORT } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { parseVolumeName, type VolumeName } from '../storage/names.ts';
import type { StorageSpec } from '../storage/storage-spec.ts';
import { localVolumeName } from '../storage/volumes.ts';
import { onlyThisMachine } from '../workloads/rpc-handlers.ts';
import { btrfsMove } from './btrfs-move.ts';
import type { TransferVerified } from './header.ts';
import type { MoveStorage } from './move-storage.ts';
import { type TransferLog, TransferReceiver } from './receiver.ts';
import { sendVolume } from './sender.ts';
import { zfsMove } from './zfs-move.ts';

export interface MoveHandlerOptions {
  /** This machine's move storage (zfs or btrfs); throws for a dir machine (no send stream). */
  storage: () => MoveStorage;
  /** This machine's overlay address (its wg0 address). */
  overlayAddress: () => string;
  /** The netns that holds wg0 (`/proc/<networking pid>/ns/net`), read again for every slot; null: this one. */
  netns: () => Promise<string | null>;
  /** A machine's overlay address from its record; NOT_FOUND when unknown. */
  addressOf: (machine: string) => Promise<string>;
  log: TransferLog;
  /** VOLUME_TRANSFER_PORT; 0 in tests. */
  port?: number;
  tokenTtlMs?: number;
}

const keyOf = (b: VolumeMoveRef) => `${localVolumeName(b.namespace, b.volume, b.slot)}\u0000${b.move_id}`;
const nameOf = (b: VolumeMoveRef): VolumeName =>
  parseVolumeName(localVolumeName(b.namespace, b.volume, b.slot));

/** The handlers and the listener they share; `close()` at daemon stop. */
export class VolumeMoveService {
  readonly #options: MoveHandlerOptions;
  #receiver: { netns: string | null; receiver: TransferReceiver } | null = null;
  /** The latest verified pass of each move on this machine (target side): what a commit may put in place. */
  readonly #verified = new Map<string, Promise<TransferVerified>>();

  constructor(options: MoveHandlerOptions) {
    this.#options = options;
  }

  /** The listener in the netns that holds wg0 now: a recreated ployz-networking means a new one. */
  async receiver(): Promise<TransferReceiver> {
    const netns = await this.#options.netns();
    const current = this.#receiver;
    if (current !== null && current.netns === netns) return current.receiver;
    this.#receiver = null;
    await current?.receiver.close();
    const receiver = await TransferReceiver.listen({
      address: this.#options.overlayAddress(),
      port: this.#options.port ?? VOLUME_TRANSFER_PORT,
      netns,
      storage: this.#options.storage(),
      log: this.#options.log,
      ...(this.#options.tokenTtlMs === undefined ? {} : { tokenTtlMs: this.#options.tokenTtlMs }),
    });
    this.#receiver = { netns, receiver };
    return receiver;
  }

  async close(): Promise<void> {
    const current = this.#receiver;
    this.#receiver = null;
    await current?.receiver.close();
  }

  handlers(): CommandHandlers<typeof volumeMoveCommands> {
    const o = this.#options;
    return {
      volume_receive_prepare: async (body, ctx) => {
        onlyThisMachine(body.machine, ctx);
        const receiver = await this.receiver();
        const sourceAddress = await o.addressOf(body.source_machine);
        const slot = await receiver.prepare({
          volume: localVolumeName(body.namespace, body.volume, body.slot),
          moveId: body.move_id,
          snapshot: body.snapshot,
          base: body.base,
          guid: body.guid,
          sourceAddress,
        });
        this.#verified.set(keyOf(body), slot.done);
        const { host, port } = receiver.address;
        return {
          token: slot.token,
          expires_at: new Date(slot.expiresAtMs).toISOString(),
          address: host,
          port,
        };
      },
      volume_send: async (body, ctx) => {
        onlyThisMachine(body.machine, ctx);
        const started = Date.now();
        const result = await sendVolume({
          storage: o.storage(),
          volume: localVolumeName(body.namespace, body.volume, body.slot),
          moveId: body.move_id,
          snapshot: body.snapshot,
          base: body.base,
          token: body.token,
          target: { host: body.target.address, port: body.target.port },
          localAddress: o.overlayAddress(),
          netns: await o.netns(),
        });
        const elapsed = Date.now() - started;
        return {
          driver: result.driver,
          snapshot: result.snapshot,
          base: result.base,
          id: result.id,
          bytes: result.bytes,
          sha256: result.sha256 ?? null,
          elapsed_ms: elapsed,
          bytes_per_second: elapsed > 0 ? Math.round((result.bytes * 1000) / elapsed) : 0,
        };
      },
      volume_receive_commit: async (body, ctx) => {
        onlyThisMachine(body.machine, ctx);
        const done = this.#verified.get(keyOf(body));
        const verified = done === undefined ? undefined : await done.catch(() => undefined);
        if (verified === undefined || verified.snapshot !== body.snapshot) {
          throw new PloyzError(
            'VOLUME_TRANSFER_FAILED',
            `no verified pass of ${body.namespace}/${body.volume} at ${body.snapshot} for move ${body.move_id} on this machine; nothing was put in place`,
            { details: { volume: body.volume, snapshot: body.snapshot, move_id: body.move_id } },
          );
        }
        const volume = await o.storage().commit(nameOf(body), body.move_id, body.snapshot, body.quota_bytes);
        this.#verified.delete(keyOf(body));
        return { dataset: volume.dataset };
      },
      volume_receive_abort: async (body, ctx) => {
        onlyThisMachine(body.machine, ctx);
        this.#verified.delete(keyOf(body));
        const storage = o.storage();
        const name = nameOf(body);
        const had = await storage.hasTemporary(name, body.move_id);
        await storage.discard(name, body.move_id);
        return { discarded: had };
      },
      volume_mark_moved: async (body, ctx) => {
        onlyThisMachine(body.machine, ctx);
        return o.storage().markMoved(nameOf(body), body.move_id);
      },
    };
  }
}

/** The move storage of a machine's storage choice; a dir machine has no send stream (STORAGE_INVALID). */
export function moveStorageOf(spec: StorageSpec): MoveStorage {
  switch (spec.kind) {
    case 'zfs':
      return zfsMove({ root: spec.root });
    case 'btrfs':
      return btrfsMove({ root: spec.root });
    case 'dir':
      throw new PloyzError(
        'STORAGE_INVALID',
        `this machine keeps volumes as plain directories (${spec.root}): they have no send stream and cannot move; use zfs or btrfs storage`,
        { details: { storage: spec.kind } },
      );
    default: {
      const never: never = spec;
      return never;
    }
  }
}
