/**
 * The volumes of a removed namespace (namespace rm): kept with their snapshots unless
 * `--delete-volumes`, then retired in step 9, after the final commit: each gets a final snapshot
 * labelled `<deploy>-final` and leaves its path, the copy kept where the driver can keep it
 * (storage/port.ts RetireResult), and its record goes. A volume that cannot be retired stays, with
 * its record, and the deploy says so; the removal stays committed.
 */
import type { VolumeRecord } from '@ployz/types';
import type { DeployEvent, EmitDeployEvent } from '../model/events.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { Versioned, VolumeAgent } from '../ports.ts';

/** The label of a retired volume's final snapshot. */
export function finalSnapshotLabel(deployId: string): string {
  return `${deployId}-final`;
}

/** The plan's volume lines of a removal: what is kept, or what goes and the snapshot taken first. */
export function withRemovalVolumes(
  plan: DeployPlan,
  records: readonly VolumeRecord[],
  deleteVolumes: boolean,
  deployId: string,
): DeployPlan {
  const label = finalSnapshotLabel(deployId);
  const volumes = records.map((r) => ({
    volume: r.name,
    machine: r.machine,
    scope: r.scope,
    action: deleteVolumes ? ('delete' as const) : ('keep' as const),
    detail: deleteVolumes
      ? `final snapshot ${label}, then deleted after the commit (${r.driver} ${r.dataset})`
      : `kept with its ${r.snapshots.length} snapshot(s); delete with ployzctl namespace rm ${r.namespace} --delete-volumes`,
  }));
  return { ...plan, volumes, changed: plan.changed || (deleteVolumes && records.length > 0) };
}

/** Step 9 of a removal with --delete-volumes: never throws; what failed stays and is said. */
export async function retireVolumes(
  agent: VolumeAgent,
  records: readonly Versioned<VolumeRecord>[],
  deployId: string,
  emit: EmitDeployEvent,
): Promise<{ retired: string[]; kept: string[] }> {
  const label = finalSnapshotLabel(deployId);
  const retired: string[] = [];
  const kept: string[] = [];
  for (const { value: r, revision } of records) {
    try {
      const done = await agent.retire(r.machine, r.namespace, { volume: r.volume, slot: r.slot }, label);
      await agent.deleteRecord(r.namespace, r.name, revision);
      const event: DeployEvent = {
        type: 'volume',
        volume: r.name,
        machine: r.machine,
        action: 'retired',
        detail: done.retired
          ? `deleted; final snapshot ${label} kept at ${done.kept}: ${done.note}`
          : 'gone from the machine already; its record is removed',
      };
      emit(event);
      retired.push(r.name);
    } catch (err) {
      kept.push(r.name);
      emit({
        type: 'warning',
        message:
          `volume ${r.name} on ${r.machine} was not deleted and is kept as it was: ${(err as Error).message}. ` +
          `The removal is committed; run ployzctl namespace rm ${r.namespace} --delete-volumes again to retry.`,
      });
    }
  }
  return { retired, kept };
}
