/**
 * Pure volume decisions of a deploy: which volumes a commit covers and where they live (the
 * plan's slots), which snapshot of a rollback's target restores each, the records a commit's
 * snapshots fold into, and the plan change a revert needs (a service whose data reverts gets
 * new instances even when its revision is unchanged).
 */
import { volumeNameOf } from '@ployz/protocol';
import {
  type CommitSnapshot,
  type DeployCommit,
  PloyzError,
  type VolumeRecord,
  type VolumeSpec,
} from '@ployz/types';
import type { DeployPlan, VolumePlan } from './plan.ts';
import type { DeployManifest } from './spec.ts';

export interface CoveredVolume {
  service: string;
  machine: string;
  volume: string;
  /** The slot of a per-slot volume; null for a single one. */
  slot: number | null;
  spec: VolumeSpec;
  /** The record's name: `<volume>` or `<volume>-<slot>`. */
  name: string;
}

/** The volumes `services` mount, at their slots' machines in the plan (a single volume once). */
export function coveredVolumes(
  manifest: DeployManifest,
  plan: DeployPlan,
  services: readonly string[],
): CoveredVolume[] {
  const covered = new Map<string, CoveredVolume>();
  for (const name of services) {
    const service = manifest.services.find((s) => s.name === name);
    const planned = plan.services.find((s) => s.service === name);
    if (service === undefined || planned === undefined) continue;
    for (const spec of service.volumes) {
      for (const slot of planned.slots) {
        const perSlot = spec.scope === 'per_slot' ? slot.slot : null;
        const key = `${spec.name}/${perSlot ?? ''}`;
        if (covered.has(key)) continue;
        covered.set(key, {
          service: name,
          machine: slot.machine,
          volume: spec.name,
          slot: perSlot,
          spec,
          name: volumeNameOf(spec.name, perSlot),
        });
      }
    }
  }
  return [...covered.values()];
}

export interface PlannedRevert {
  target: CoveredVolume;
  snapshot: CommitSnapshot;
}

/**
 * The snapshot of the rollback's target deploy that restores each covered volume. A volume with
 * no snapshot there (dir storage, or created after that deploy) is ROLLBACK_NO_SNAPSHOT unless
 * the caller accepts that its data will not revert; one whose snapshot lives on another machine
 * than the volume now is ROLLBACK_VOLUME_ELSEWHERE.
 */
export function revertsFor(
  covered: readonly CoveredVolume[],
  targetCommits: readonly DeployCommit[],
  targetId: string,
  withoutVolumeRevert: boolean,
): { reverts: PlannedRevert[]; notReverted: CoveredVolume[] } {
  const snapshots = targetCommits.flatMap((c) => c.snapshots);
  const reverts: PlannedRevert[] = [];
  const notReverted: CoveredVolume[] = [];
  for (const target of covered) {
    const snapshot = snapshots.find((s) => s.volume === target.volume && s.slot === target.slot);
    if (snapshot === undefined) {
      if (withoutVolumeRevert) {
        notReverted.push(target);
        continue;
      }
      throw new PloyzError(
        'ROLLBACK_NO_SNAPSHOT',
        `volume ${target.name} has no snapshot from deploy ${targetId} (its storage has no snapshots, or the volume is newer), so its data would not revert; roll back with --without-volume-revert to restore the services only`,
        { details: { volume: target.name, deploy_id: targetId } },
      );
    }
    if (snapshot.machine !== target.machine) {
      throw new PloyzError(
        'ROLLBACK_VOLUME_ELSEWHERE',
        `volume ${target.name} is on machine ${target.machine} but its snapshot from deploy ${targetId} is on ${snapshot.machine}; move the volume back first, or roll back with --without-volume-revert`,
        { details: { volume: target.name, machine: target.machine, snapshot_machine: snapshot.machine } },
      );
    }
    reverts.push({ target, snapshot });
  }
  return { reverts, notReverted };
}

/** The plan with new instances for every kept slot of `services` (their data is about to change). */
export function restartServices(
  plan: DeployPlan,
  services: ReadonlySet<string>,
  newInstanceId: (service: string, slot: number) => string,
): DeployPlan {
  const changed = plan.services.map((s) => {
    if (!services.has(s.service) || !s.slots.some((slot) => slot.action === 'keep')) return s;
    const stops = [...s.stops];
    const slots = s.slots.map((slot) => {
      if (slot.action !== 'keep') return slot;
      stops.push({
        slot: slot.slot,
        machine: slot.machine,
        instance: slot.instance,
        reason: 'replaced' as const,
      });
      return { ...slot, instance: newInstanceId(s.service, slot.slot), action: 'start' as const };
    });
    return { ...s, action: s.action === 'unchanged' ? ('update' as const) : s.action, slots, stops };
  });
  const starts = (ids: readonly string[]) =>
    changed
      .filter((s) => ids.includes(s.service))
      .reduce((n, s) => n + s.slots.filter((x) => x.action === 'start').length, 0);
  return {
    ...plan,
    changed: plan.changed || changed.some((s) => s.action !== 'unchanged'),
    services: changed,
    phases: plan.phases.map((p) => ({ ...p, starts: starts(p.services) })),
  };
}

/**
 * The plan's volume lines: every volume the deploy covers, what happens to it (snapshot at the
 * commit, revert to the rollback target's snapshot, or nothing on storage without snapshots), and
 * the writer-stop gap of a single volume whose service gets a new instance.
 */
export function volumePlanOf(
  manifest: DeployManifest,
  plan: DeployPlan,
  reverts: readonly PlannedRevert[],
  notReverted: readonly CoveredVolume[],
  snapshotsOn: (machine: string) => boolean,
): VolumePlan[] {
  const covered = coveredVolumes(
    manifest,
    plan,
    plan.services.filter((s) => s.revision !== null).map((s) => s.service),
  );
  return covered.map((c) => {
    const revert = reverts.find((r) => r.target.name === c.name);
    const starts = plan.services
      .find((s) => s.service === c.service)
      ?.slots.some((s) => s.action === 'start');
    const gap =
      c.spec.scope === 'single' && starts === true
        ? '; writer stop gap: the old instance stops before the new one starts'
        : '';
    const base = { volume: c.name, machine: c.machine, scope: c.spec.scope };
    if (revert !== undefined) {
      return {
        ...base,
        action: 'revert' as const,
        detail: `to the snapshot of ${revert.snapshot.label} (${revert.snapshot.at})${gap}`,
      };
    }
    if (notReverted.some((n) => n.name === c.name)) {
      return {
        ...base,
        action: 'not_reverted' as const,
        detail: `keeps its data (--without-volume-revert)${gap}`,
      };
    }
    if (!snapshotsOn(c.machine)) {
      return {
        ...base,
        action: 'no_snapshots' as const,
        detail: `dir storage on ${c.machine}: no snapshot, a rollback will not revert this data${gap}`,
      };
    }
    return { ...base, action: 'snapshot' as const, detail: `snapshot at the commit${gap}` };
  });
}

/** The record of a covered volume after a commit's snapshot of it (snapshots oldest first, no duplicate). */
export function foldSnapshot(
  previous: VolumeRecord | null,
  covered: CoveredVolume,
  commit: DeployCommit,
  taken: CommitSnapshot | undefined,
  namespace: string,
  at: string,
): VolumeRecord {
  const snapshots = [...(previous?.snapshots ?? [])];
  if (taken !== undefined && !snapshots.some((s) => s.id === taken.id)) {
    snapshots.push({
      deploy_id: commit.deploy_id,
      commit_id: commit.id,
      id: taken.id,
      at: taken.at,
      bytes: taken.bytes,
    });
  }
  return {
    namespace,
    name: covered.name,
    volume: covered.volume,
    slot: covered.slot,
    scope: covered.spec.scope,
    machine: covered.machine,
    driver: taken?.driver ?? previous?.driver ?? 'dir',
    dataset: taken?.dataset ?? previous?.dataset ?? '',
    quota_bytes: covered.spec.quota_bytes,
    owner: covered.spec.owner ?? previous?.owner ?? null,
    mode: covered.spec.mode ?? previous?.mode ?? null,
    keep_snapshots: covered.spec.keep_snapshots,
    created_by: previous?.created_by ?? commit.deploy_id,
    status: 'active',
    snapshots,
    // The commit that covers it ends whatever the deploy had pending on it.
    pending: null,
    updated_at: at,
  };
}

/**
 * Owner and mode of a volume are fixed once it exists (what its files belong to): a manifest that
 * changes them is refused before anything starts. Quota may change (growing is checked by the
 * machine against what is used).
 */
export function assertVolumeUnchanged(spec: VolumeSpec, record: VolumeRecord): void {
  const owner = (o: VolumeRecord['owner']) => (o === null ? 'unset' : `${o.uid}:${o.gid}`);
  const mode = (m: number | null) => (m === null ? 'unset' : `0${m.toString(8)}`);
  if (spec.owner !== null && record.owner !== null && owner(spec.owner) !== owner(record.owner)) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `volume ${record.namespace}/${record.name} is owned by ${owner(record.owner)}; the manifest asks for ${owner(spec.owner)}, and an existing volume's owner cannot change (chown its files from a container, or use a new volume)`,
      { details: { volume: record.name, path: `volumes.${spec.name}.owner` } },
    );
  }
  if (spec.mode !== null && record.mode !== null && spec.mode !== record.mode) {
    throw new PloyzError(
      'STORAGE_INVALID',
      `volume ${record.namespace}/${record.name} has mode ${mode(record.mode)}; the manifest asks for ${mode(spec.mode)}, and an existing volume's mode cannot change (use a new volume)`,
      { details: { volume: record.name, path: `volumes.${spec.name}.mode` } },
    );
  }
}
