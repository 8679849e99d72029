/**
 * The VolumeAgent port: the caller side of @ployz/protocol's `volumeCommands` over machine-command
 * RPC (the participant side is workloads/volume-handlers.ts), and the volume records of
 * @ployz/store (`cp_volumes_<auth>`, compare-and-set). Nothing is retried here.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { RpcClient, VOLUME_RPC, volumeCommands } from '@ployz/protocol';
import { escapeToken, type Store } from '@ployz/store';
import type { VolumeAgent, VolumeRefOf } from '../ports.ts';

/** A snapshot or revert waits on the storage tools; zfs-fuse can take seconds under load. */
const STORAGE_TIMEOUT_MS = 120_000;
/** Stopping writers waits for their stop grace (10 s) and some slack. */
const WRITERS_TIMEOUT_MS = 40_000;

/** Where a clone's or a replace's data comes from, as the wire names it. */
function sourceOf(from: VolumeRefOf & { namespace: string; snapshotId: string }) {
  return { namespace: from.namespace, volume: from.volume, slot: from.slot, snapshot_id: from.snapshotId };
}

export function rpcVolumeAgent(
  nc: NatsConnection,
  scope: { installation: string; authority: string },
  store: Store,
): VolumeAgent {
  const client = new RpcClient({ nc, scope, commands: volumeCommands });
  return {
    async snapshot(machine, namespace, volumes, label) {
      return client.call(
        machine,
        VOLUME_RPC.snapshot,
        { machine, namespace, volumes: [...volumes], label },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
    },
    async revert(machine, namespace, ref, snapshotId) {
      const result = await client.call(
        machine,
        VOLUME_RPC.revert,
        { machine, namespace, volume: ref.volume, slot: ref.slot, snapshot_id: snapshotId },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
      return { preRevertId: result.pre_revert.id };
    },
    async stopWriters(machine, namespace, ref) {
      const result = await client.call(
        machine,
        VOLUME_RPC.stopWriters,
        { machine, namespace, volume: ref.volume, slot: ref.slot },
        { timeoutMs: WRITERS_TIMEOUT_MS },
      );
      return result.stopped;
    },
    async startWriters(machine, namespace, containers) {
      if (containers.length === 0) return;
      await client.call(
        machine,
        VOLUME_RPC.startWriters,
        { machine, namespace, containers: [...containers] },
        { timeoutMs: WRITERS_TIMEOUT_MS },
      );
    },
    async prune(machine, namespace, ref, snapshotIds) {
      return client.call(
        machine,
        VOLUME_RPC.prune,
        { machine, namespace, volume: ref.volume, slot: ref.slot, snapshot_ids: [...snapshotIds] },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
    },
    async clone(machine, namespace, ref, from, quotaBytes) {
      const result = await client.call(
        machine,
        VOLUME_RPC.clone,
        {
          machine,
          namespace,
          volume: ref.volume,
          slot: ref.slot,
          from: sourceOf(from),
          quota_bytes: quotaBytes,
        },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
      return { dataset: result.dataset, tookMs: result.took_ms };
    },
    async replace(machine, namespace, ref, from) {
      const result = await client.call(
        machine,
        VOLUME_RPC.replace,
        {
          machine,
          namespace,
          volume: ref.volume,
          slot: ref.slot,
          from: sourceOf(from),
        },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
      return { preRevertId: result.pre_revert.id };
    },
    async discard(machine, namespace, ref, originSnapshotId) {
      const result = await client.call(
        machine,
        VOLUME_RPC.discard,
        { machine, namespace, volume: ref.volume, slot: ref.slot, origin_snapshot_id: originSnapshotId },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
      return result.discarded;
    },
    async retire(machine, namespace, ref, label) {
      const result = await client.call(
        machine,
        VOLUME_RPC.retire,
        { machine, namespace, volume: ref.volume, slot: ref.slot, label },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
      return {
        retired: result.retired,
        kept: result.kept,
        snapshotId: result.snapshot_id,
        note: result.note,
      };
    },
    async deleteRecord(namespace, name, expectedRevision) {
      await store.volumes.delete(store.volumes.key(namespace, name), expectedRevision);
    },
    async describe(machine, namespace, ref) {
      return client.call(
        machine,
        VOLUME_RPC.describe,
        { machine, namespace, volume: ref.volume, slot: ref.slot },
        { timeoutMs: STORAGE_TIMEOUT_MS },
      );
    },
    async listRecords(namespace) {
      return store.volumes.list(namespace === undefined ? '>' : `${escapeToken(namespace)}.>`);
    },
    async getRecord(namespace, name) {
      return store.volumes.get(namespace, name);
    },
    async putRecord(record, expectedRevision) {
      return (await store.volumes.save(record, expectedRevision)).revision;
    },
  };
}
