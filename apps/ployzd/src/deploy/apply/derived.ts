/**
 * The deploy side of a branch or a promote (model/branch.ts decides what; deploy/branches.ts reads
 * the records): against the deploy's own plan, which volume (per slot) gets its data from the
 * other namespace, the services whose data is replaced restarted like a rollback's, the lineage
 * completed with its volume lines. Pure over the plan; the work itself is RunVolumes.bring.
 */
import type { Lineage } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { dataFor, dataPlanLines, type PlannedData, type VolumeSourcing } from '../model/branch.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { DeployManifest } from '../model/spec.ts';
import { restartServices } from '../model/volumes.ts';

export interface DerivedDeploy {
  /** The lineage without its volume lines (`planData` adds them). */
  lineage: Omit<Lineage, 'volumes'>;
  volumes: VolumeSourcing[];
  /** Checked again under the lease, at step 3 (a branch's namespace must still be new). */
  check?: () => Promise<void>;
}

export interface DataPlanning {
  plan: DeployPlan;
  work: PlannedData[];
  lineage: Lineage;
}

export function planData(
  engine: EngineOptions,
  manifest: DeployManifest,
  plan: DeployPlan,
  derived: DerivedDeploy,
): DataPlanning {
  const data = dataFor(manifest, plan, derived.volumes, derived.lineage.from_namespace);
  const { work } = data;
  const lineage: Lineage = { ...derived.lineage, volumes: data.volumes };
  // Data replaced under a service: new instances even when its revision is the same — every
  // service that mounts the volume (its writers are stopped for the replace).
  const under = new Set(work.filter((w) => w.kind === 'replace').map((w) => w.target.volume));
  const replaced = new Set(
    manifest.services.filter((s) => s.volumes.some((v) => under.has(v.name))).map((s) => s.name),
  );
  const restarted =
    replaced.size === 0
      ? plan
      : restartServices(plan, replaced, (service, slot) =>
          engine.newInstanceId(manifest.namespace, service, slot),
        );
  return { plan: { ...restarted, lineage }, work, lineage };
}

/** The plan (its volume lines made by planVolumes) with the data work's lines. */
export function withDataLines(plan: DeployPlan, data: DataPlanning): DeployPlan {
  return { ...plan, lineage: data.lineage, volumes: dataPlanLines(plan.volumes, data.work, data.lineage) };
}
