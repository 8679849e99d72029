/**
 * The volume side of a plan (preview, and the apply's steps 1 and 3): each volume's snapshot or
 * revert, a rollback's reverts planned against its target's commits, and which earlier deploy a
 * manifest restores (seed 004). Reads the store; changes nothing.
 */
import type { EngineOptions } from '../context.ts';
import { assertNoMoveSince } from '../model/move.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployManifest } from '../model/spec.ts';
import {
  type CoveredVolume,
  coveredVolumes,
  type PlannedRevert,
  restartServices,
  revertsFor,
  volumePlanOf,
} from '../model/volumes.ts';

export interface VolumePlanning {
  /** The plan with its volume lines and `rollback_of`; services whose data reverts get new instances. */
  plan: DeployPlan;
  reverts: PlannedRevert[];
}

/**
 * The volume side of a plan (preview, and the apply's steps 1 and 3). A rollback's reverts are
 * planned against the target's commits here, so one that cannot revert is refused
 * (ROLLBACK_NO_SNAPSHOT, ROLLBACK_VOLUME_ELSEWHERE), and one past a volume move
 * (ROLLBACK_PAST_MOVE), before anything changed.
 */
export async function planVolumes(
  engine: EngineOptions,
  manifest: DeployManifest,
  plan: DeployPlan,
  rollbackOf: string | null,
  withoutVolumeRevert: boolean,
): Promise<VolumePlanning> {
  // Seed 004: no rollback past a volume move (ROLLBACK_PAST_MOVE names it), data revert or not.
  const commits = rollbackOf === null ? [] : await engine.store.listCommits(manifest.namespace);
  if (rollbackOf !== null) assertNoMoveSince(commits, rollbackOf);
  if (engine.volumes === undefined || manifest.volumes.length === 0) {
    return { plan: { ...plan, rollback_of: rollbackOf }, reverts: [] };
  }
  const covered = coveredVolumes(
    manifest,
    plan,
    plan.services.map((s) => s.service),
  );
  let reverts: PlannedRevert[] = [];
  let notReverted: CoveredVolume[] = [];
  if (rollbackOf !== null && covered.length > 0) {
    const target = commits.filter((c) => c.deploy_id === rollbackOf);
    ({ reverts, notReverted } = revertsFor(covered, target, rollbackOf, withoutVolumeRevert));
  }
  const services = new Set(reverts.map((r) => r.target.service));
  const restarted =
    services.size === 0
      ? plan
      : restartServices(plan, services, (service, slot) =>
          engine.newInstanceId(manifest.namespace, service, slot),
        );
  const machines = await engine.store.listMachines();
  const snapshotsOn = (id: string) => {
    const driver = machines.find((m) => m.id === id)?.storage?.driver;
    return driver !== undefined && driver !== 'dir';
  };
  return {
    plan: {
      ...restarted,
      rollback_of: rollbackOf,
      volumes: volumePlanOf(manifest, restarted, reverts, notReverted, snapshotsOn),
    },
    reverts,
  };
}

/**
 * The earlier deploy a manifest restores (seed 004: `git show HEAD~1:deploy.toml > rollback.toml`
 * then `ployzctl deploy -f rollback.toml` is a rollback, data included): the newest committed
 * deploy of the namespace with this manifest hash, unless the newest committed deploy has it
 * (then it is a redeploy of what runs). Only manifests with volumes are looked up: without data,
 * deploying an old manifest and rolling back to it are the same deploy.
 */
export async function earlierDeployOf(
  engine: EngineOptions,
  manifest: DeployManifest,
): Promise<string | null> {
  if (engine.volumes === undefined || manifest.volumes.length === 0) return null;
  const committed = (await engine.store.listStatuses(manifest.namespace))
    .map((v) => v.value)
    .filter((s) => s.state === 'committed' || s.state === 'FailedAfterCheckpoint')
    .sort((a, b) => (a.deploy_id < b.deploy_id ? 1 : -1));
  const latest = committed[0];
  if (latest === undefined || latest.manifest_hash === manifest.manifest_hash) return null;
  return committed.find((s) => s.manifest_hash === manifest.manifest_hash)?.deploy_id ?? null;
}
