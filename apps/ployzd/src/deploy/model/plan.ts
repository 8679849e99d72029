/**
 * The planner (step 1): the manifest against stored intent. Pure: records in, plan out.
 *
 * Per service the action is
 * - `create`    no committed release yet: start every slot;
 * - `replace`   a new revision: start a candidate beside every old instance, stop the old ones
 *               after the final commit (start-first);
 * - `update`    same revision, slots changed (scale, a slot moved off an ineligible machine, or
 *               an active instance lost): start only what is missing, stop what is surplus;
 * - `remove`    in the stored release but not in the manifest: stop every instance;
 * - `unchanged` nothing to do.
 * Instances of the namespace that no release points at (left by an earlier failed cleanup) are
 * stopped as `orphan`s. A plan with no starts and no stops is clean: `changed === false`.
 */
import type {
  DeployPlan,
  PhasePlan,
  ServiceAction,
  ServicePlan,
  SlotPlan,
  StopPlan,
  StopReason,
} from '@ployz/protocol';
import { DEFAULT_PHASE_ID, type InstanceRecord, type MachineRecord, type ReleaseRecord } from '@ployz/types';
import { phasesOf } from './phases.ts';
import { type MachineCapacity, placeService } from './placement.ts';
import type { DeployManifest } from './spec.ts';

// The plan's shape is the wire contract (@ployz/protocol deploy-events.ts); the planner builds it.
export type {
  DeployPlan,
  PhasePlan,
  ServiceAction,
  ServicePlan,
  SlotPlan,
  StopPlan,
  StopReason,
  VolumePlan,
} from '@ployz/protocol';

export interface PlanInput {
  manifest: DeployManifest;
  /** service name → revision id of its spec in this manifest. */
  revisions: ReadonlyMap<string, string>;
  releases: readonly ReleaseRecord[];
  instances: readonly InstanceRecord[];
  machines: readonly MachineRecord[];
  capacity: ReadonlyMap<string, MachineCapacity>;
  newInstanceId: (service: string, slot: number) => string;
}

function isHealthy(i: InstanceRecord | undefined): boolean {
  return i !== undefined && i.state === 'running' && i.ready && !i.draining && i.error === null;
}

export function planDeploy(input: PlanInput): DeployPlan {
  const { manifest } = input;
  const ns = manifest.namespace;
  const releases = new Map(input.releases.filter((r) => r.namespace === ns).map((r) => [r.service, r]));
  const instances = input.instances.filter((i) => i.namespace === ns);
  const byId = new Map(instances.map((i) => [i.id, i]));
  const ordered = phasesOf(
    manifest.phases,
    manifest.services.map((s) => s.name),
  );
  const phaseOf = new Map<string, string>();
  for (const p of ordered) for (const s of p.services) phaseOf.set(s, p.id);

  const services: ServicePlan[] = [];
  for (const svc of manifest.services) {
    const revision = input.revisions.get(svc.name);
    if (revision === undefined) throw new Error(`planner: no revision for service ${svc.name}`);
    const release = releases.get(svc.name);
    const previous = release?.slots ?? [];
    // A service new here starts where the manifest says its slots run elsewhere (a branch).
    const before = release === undefined ? (manifest.place_like?.[svc.name] ?? []) : previous;
    // A pinned service (a volume move) is placed on its machine alone, each slot keeping its number.
    const pin = manifest.place_on?.[svc.name];
    const placed = placeService({
      service: svc,
      machines: pin === undefined ? input.machines : input.machines.filter((m) => m.id === pin),
      capacity: input.capacity,
      previous: pin === undefined ? before : before.map((p) => ({ ...p, machine: pin })),
    });
    const slots: SlotPlan[] = [];
    const stops: StopPlan[] = [];
    const sameRevision = release !== undefined && release.revision === revision;
    for (const p of placed) {
      const prev = previous.find((s) => s.slot === p.slot);
      if (
        sameRevision &&
        prev !== undefined &&
        prev.machine === p.machine &&
        isHealthy(byId.get(prev.instance))
      ) {
        slots.push({ slot: p.slot, machine: p.machine, instance: prev.instance, action: 'keep' });
      } else {
        slots.push({
          slot: p.slot,
          machine: p.machine,
          instance: input.newInstanceId(svc.name, p.slot),
          action: 'start',
        });
      }
    }
    for (const prev of previous) {
      const target = slots.find((s) => s.slot === prev.slot);
      if (target?.action === 'keep' && target.instance === prev.instance) continue;
      if (!byId.has(prev.instance)) continue; // nothing left to stop
      const reason: StopReason =
        target === undefined
          ? 'scaled_down'
          : !sameRevision
            ? 'replaced'
            : target.machine !== prev.machine
              ? 'moved'
              : 'lost';
      stops.push({ slot: prev.slot, machine: prev.machine, instance: prev.instance, reason });
    }
    const action: ServiceAction =
      release === undefined
        ? 'create'
        : !sameRevision
          ? 'replace'
          : slots.some((s) => s.action === 'start') || stops.length > 0
            ? 'update'
            : 'unchanged';
    services.push({
      service: svc.name,
      action,
      revision,
      previous_revision: release?.revision ?? null,
      phase: phaseOf.get(svc.name) ?? DEFAULT_PHASE_ID,
      slots,
      stops,
    });
  }

  const wanted = new Set(manifest.services.map((s) => s.name));
  for (const release of releases.values()) {
    if (wanted.has(release.service)) continue;
    services.push({
      service: release.service,
      action: 'remove',
      revision: null,
      previous_revision: release.revision,
      phase: DEFAULT_PHASE_ID,
      slots: [],
      stops: release.slots
        .filter((s) => byId.has(s.instance))
        .map((s) => ({ slot: s.slot, machine: s.machine, instance: s.instance, reason: 'removed' as const })),
    });
  }

  // Orphans: instances no committed release points at.
  const referenced = new Set([...releases.values()].flatMap((r) => r.slots.map((s) => s.instance)));
  for (const orphan of instances.filter((i) => !referenced.has(i.id))) {
    let plan = services.find((s) => s.service === orphan.service);
    if (plan === undefined) {
      plan = {
        service: orphan.service,
        action: 'remove',
        revision: null,
        previous_revision: null,
        phase: DEFAULT_PHASE_ID,
        slots: [],
        stops: [],
      };
      services.push(plan);
    }
    plan.stops.push({ slot: orphan.slot, machine: orphan.machine, instance: orphan.id, reason: 'orphan' });
    if (plan.action === 'unchanged') plan.action = 'update';
  }

  const phases: PhasePlan[] = ordered.map((p) => {
    const owned = services.filter((s) => s.phase === p.id);
    const starts = owned.reduce((n, s) => n + s.slots.filter((x) => x.action === 'start').length, 0);
    const changed = owned.filter((s) => s.action !== 'unchanged');
    const commit =
      p.commit_policy === 'checkpoint' ? 'append a checkpoint commit' : 'covered by the final commit';
    const does =
      changed.length === 0
        ? `nothing to do (${commit})`
        : `start ${starts} candidate(s) for ${changed.map((s) => `${s.service} (${s.action})`).join(', ')} and wait for readiness; ${commit}`;
    return {
      id: p.id,
      index: p.index,
      commit_policy: p.commit_policy,
      services: owned.map((s) => s.service),
      starts,
      does,
    };
  });

  const count = (a: ServiceAction) => services.filter((s) => s.action === a).length;
  const starts = services.reduce((n, s) => n + s.slots.filter((x) => x.action === 'start').length, 0);
  const stops = services.reduce((n, s) => n + s.stops.length, 0);
  return {
    namespace: ns,
    manifest_hash: manifest.manifest_hash,
    changed: services.some((s) => s.action !== 'unchanged'),
    services,
    phases,
    volumes: [],
    images: [],
    rollback_of: null,
    lineage: null,
    summary: {
      create: count('create'),
      replace: count('replace'),
      update: count('update'),
      remove: count('remove'),
      unchanged: count('unchanged'),
      starts,
      stops,
    },
  };
}
