/**
 * Step 1 (and the re-plan of step 3): stored intent of one namespace → a plan. Reads only.
 */
import type { MachineRecord, ReleaseRecord, RevisionRecord } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import { assertRoutesFree, committedClaims, type RouteClaim } from '../model/ownership.ts';
import type { MachineCapacity } from '../model/placement.ts';
import { type DeployPlan, planDeploy } from '../model/plan.ts';
import type { DeployManifest } from '../model/spec.ts';
import type { Versioned } from '../ports.ts';

/** The current revisions of these releases (content-addressed; unknown ones left out). */
export async function readRevisions(
  engine: EngineOptions,
  releases: readonly ReleaseRecord[],
): Promise<Map<string, RevisionRecord>> {
  const revisions = new Map<string, RevisionRecord>();
  await Promise.all(
    releases.map(async (r) => {
      const revision = await engine.store.getRevision(r.namespace, r.service, r.revision);
      if (revision !== null) revisions.set(revision.id, revision);
    }),
  );
  return revisions;
}

/** The routes the other namespaces' committed releases claim. */
export async function otherNamespacesClaims(
  engine: EngineOptions,
  namespace: string,
  releases: readonly ReleaseRecord[],
): Promise<RouteClaim[]> {
  const others = releases.filter((r) => r.namespace !== namespace);
  return committedClaims(others, await readRevisions(engine, others));
}

export interface Preview {
  plan: DeployPlan;
  machines: MachineRecord[];
  /** The namespace's releases the plan was made from, with their store revisions. */
  releases: Versioned<ReleaseRecord>[];
}

/**
 * Reads stored intent for one namespace and plans against the given capacity. A route another
 * namespace's release owns is `HOSTNAME_OWNED` here, before the deploy writes anything.
 */
export async function previewPlan(
  engine: EngineOptions,
  manifest: DeployManifest,
  capacity?: ReadonlyMap<string, MachineCapacity>,
): Promise<Preview> {
  const [machines, stored, instances] = await Promise.all([
    engine.store.listMachines(),
    engine.store.listReleases(),
    engine.store.listInstances(manifest.namespace),
  ]);
  const allReleases = stored.map((r) => r.value);
  const own = stored.filter((r) => r.value.namespace === manifest.namespace);
  const releases = own.map((r) => r.value);
  assertRoutesFree(manifest, await otherNamespacesClaims(engine, manifest.namespace, allReleases));
  // Without probes (preview), every known machine is assumed to answer.
  const cap =
    capacity ??
    new Map(
      machines.map((m) => [m.id, { cpus: 0, memory_free_mb: Number.MAX_SAFE_INTEGER, disk_free_mb: 0 }]),
    );
  const revisions = new Map(
    manifest.services.map((s) => [s.name, engine.codec.revisionId(manifest.namespace, s)]),
  );
  const plan = planDeploy({
    manifest,
    revisions,
    releases,
    instances: instances.map((i) => i.value),
    machines,
    capacity: cap,
    newInstanceId: (service, slot) => engine.newInstanceId(manifest.namespace, service, slot),
  });
  return { plan, machines, releases: own };
}

export function summarise(plan: DeployPlan): string {
  const s = plan.summary;
  return `${s.create} create, ${s.replace} replace, ${s.update} update, ${s.remove} remove, ${s.unchanged} unchanged`;
}
