/**
 * The participant side of @ployz/protocol's `volumeCommands`: snapshots at a commit, reverts on a
 * rollback, the stop-first handling of a volume's writers, and a branch's clones (and a promote's
 * replace) between two namespaces' volumes, for the volumes this machine holds. Bodies are already parsed strictly; each must name this machine (RPC_WRONG_MACHINE), and
 * a container is stopped or started only when its labels say it is a managed workload of the
 * namespace asked about, on this machine (RPC_NOT_MANAGED).
 */
import { stat } from 'node:fs/promises';
import { LABELS, workloadIdentityOf } from '@ployz/identity';
import type { CommandHandlers, VolumeRef, volumeCommands } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { inspectOrNull } from '../runtime/docker-errors.ts';
import type { SnapshotInfo } from '../storage/port.ts';
import { type LocalVolumes, localVolumeName } from '../storage/volumes.ts';
import { onlyThisMachine } from './rpc-handlers.ts';

export interface VolumeHandlerOptions {
  volumes: () => LocalVolumes;
  docker: () => Docker;
}

/** Seconds a writer gets to stop before it is killed. */
const WRITER_STOP_GRACE_S = 10;

function view(s: SnapshotInfo) {
  return { id: s.id, label: s.label, created_at: s.createdAt, bytes: s.bytes };
}

function nameOf(namespace: string, ref: VolumeRef): string {
  return localVolumeName(namespace, ref.volume, ref.slot);
}

/** Running managed workloads of `namespace` on this machine that mount `path`. */
async function writersOf(
  docker: Docker,
  machine: string,
  namespace: string,
  path: string,
): Promise<string[]> {
  const running = await docker.listContainers({
    filters: {
      label: [`${LABELS.managed}=true`, `${LABELS.namespace}=${namespace}`, `${LABELS.machine}=${machine}`],
    },
  });
  return running
    .filter((c) => workloadIdentityOf(c.Labels ?? {}) !== null)
    .filter((c) => (c.Mounts ?? []).some((m) => m.Source === path))
    .map((c) => c.Id);
}

export function volumeRpcHandlers(options: VolumeHandlerOptions): CommandHandlers<typeof volumeCommands> {
  return {
    volume_snapshot: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const volumes = options.volumes();
      if (!volumes.canSnapshot) return { driver: volumes.kind, snapshots: [] };
      const snapshots = [];
      try {
        for (const ref of body.volumes) {
          const taken = await volumes.snapshot(nameOf(body.namespace, ref), body.label);
          snapshots.push({ ...ref, dataset: taken.dataset, snapshot: view(taken) });
        }
      } catch (error) {
        // All or nothing: no commit will name the snapshots this call took before the failure.
        for (const s of snapshots) {
          await volumes.prune(nameOf(body.namespace, s), [s.snapshot.id]).catch(() => undefined);
        }
        throw error;
      }
      return { driver: volumes.kind, snapshots };
    },
    volume_revert: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const result = await options.volumes().revert(nameOf(body.namespace, body), body.snapshot_id);
      return { pre_revert: view(result.preRevert) };
    },
    volume_stop_writers: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const state = await options.volumes().describe(nameOf(body.namespace, body));
      if (state === undefined) return { stopped: [] };
      const docker = options.docker();
      const ids = await writersOf(docker, ctx.machine, body.namespace, state.path);
      await Promise.all(ids.map((id) => docker.getContainer(id).stop({ t: WRITER_STOP_GRACE_S })));
      return { stopped: ids };
    },
    volume_start_writers: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const docker = options.docker();
      const started: string[] = [];
      for (const id of body.containers) {
        const existing = await inspectOrNull(docker, id);
        if (existing === null) continue; // removed since: nothing to start
        const who = workloadIdentityOf(existing.Config.Labels ?? {});
        if (who === null || who.namespace !== body.namespace || who.machine !== ctx.machine) {
          throw new PloyzError(
            'RPC_NOT_MANAGED',
            `container ${id} was left alone: it is not a managed workload of ${body.namespace} on ${ctx.machine} ('${ctx.command}' refused)`,
            { details: { container: id } },
          );
        }
        if (!existing.State.Running) await docker.getContainer(id).start();
        started.push(existing.Id);
      }
      return { started };
    },
    volume_prune: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      return options.volumes().prune(nameOf(body.namespace, body), body.snapshot_ids);
    },
    volume_clone: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const volumes = options.volumes();
      const cloned = await volumes.clone(
        nameOf(body.from.namespace, body.from),
        body.from.snapshot_id,
        nameOf(body.namespace, body),
        body.quota_bytes,
      );
      return { driver: volumes.kind, dataset: cloned.dataset, took_ms: Math.round(cloned.tookMs * 10) / 10 };
    },
    volume_replace: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const result = await options
        .volumes()
        .replace(nameOf(body.namespace, body), nameOf(body.from.namespace, body.from), body.from.snapshot_id);
      return { pre_revert: view(result.preRevert) };
    },
    volume_discard: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      return {
        discarded: await options
          .volumes()
          .discardClone(nameOf(body.namespace, body), body.origin_snapshot_id),
      };
    },
    volume_retire: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const retired = await options.volumes().retire(nameOf(body.namespace, body), body.label);
      if (retired === null)
        return { retired: false, kept: null, snapshot_id: null, note: 'no such volume here' };
      return {
        retired: true,
        kept: retired.kept,
        snapshot_id: retired.snapshot?.id ?? null,
        note: retired.note,
      };
    },
    volume_describe: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const volumes = options.volumes();
      const state = await volumes.describe(nameOf(body.namespace, body));
      if (state === undefined) {
        return {
          driver: volumes.kind,
          exists: false,
          dataset: null,
          used_bytes: null,
          quota_bytes: null,
          owner: null,
          mode: null,
          snapshots: [],
        };
      }
      const root = await stat(state.path);
      return {
        driver: volumes.kind,
        exists: true,
        dataset: state.dataset,
        used_bytes: state.usage.usedBytes,
        quota_bytes: state.usage.quotaBytes,
        owner: { uid: root.uid, gid: root.gid },
        mode: root.mode & 0o7777,
        snapshots: state.snapshots.map(view),
      };
    },
  };
}
