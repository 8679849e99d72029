/**
 * The deploy engine's public face: preview, apply, history, rollback, branch and promote, and
 * crash recovery over the ports of ports.ts. The daemon builds one at start (after `recover()`), and the local API
 * routes and RPC handlers call into it.
 */
import { deployId, instanceId } from '@ployz/identity';
import type { BranchPlanView, NamespaceView } from '@ployz/protocol';
import type { RouteConflict } from '@ployz/routing';
import type { DeployStatusRecord } from '@ployz/types';
import { Apply } from './apply/apply.ts';
import { planImages } from './apply/images.ts';
import { previewPlan, readRevisions } from './apply/preview.ts';
import type { ApplyOptions, ApplyResult } from './apply/run.ts';
import { earlierDeployOf, planVolumes } from './apply/volume-plan.ts';
import { withRemovalVolumes } from './apply/volume-retire.ts';
import { recoverVolumes, type VolumeRecoveryReport } from './apply/volume-undo.ts';
import {
  applyBranch,
  applyPromote,
  type BranchOptions,
  type RunOptions as BranchRunOptions,
  type PromoteOptions,
  previewBranch,
  previewPromote,
} from './branches.ts';
import type { EngineOptions } from './context.ts';
import {
  type DeployDetail,
  type DeployListOptions,
  listDeploys,
  rollbackManifest,
  showDeploy,
} from './history.ts';
import type { EmitDeployEvent } from './model/events.ts';
import { storedRouteConflicts } from './model/ownership.ts';
import type { DeployPlan } from './model/plan.ts';
import type { DeployManifest } from './model/spec.ts';
import { assertNamespaceKnown, namespaceViews, removalManifest } from './namespaces.ts';
import { type RecoveryReport, recoverDeploys } from './recovery.ts';

/** Deploy ids sort by time (@ployz/identity). */
export function newDeployId(now: Date = new Date()): string {
  return deployId(now.getTime());
}

/** `<ns>-<svc>-<slot>-<random>` (@ployz/identity); the container is `ployz-<ns>-<svc>-<instance>`. */
export function newInstanceId(namespace: string, service: string, slot: number): string {
  return instanceId({ namespace, service, slot });
}

export class DeployEngine {
  readonly options: EngineOptions;

  constructor(options: EngineOptions) {
    this.options = options;
  }

  /** The plan, volumes and images included; a manifest of an earlier deploy previews as its rollback. */
  async preview(
    manifest: DeployManifest,
    options: { withoutVolumeRevert?: boolean } = {},
  ): Promise<DeployPlan> {
    const { plan } = await previewPlan(this.options, manifest);
    const rollbackOf = await earlierDeployOf(this.options, manifest);
    const volumed = await planVolumes(
      this.options,
      manifest,
      plan,
      rollbackOf,
      options.withoutVolumeRevert === true,
    );
    // Which machines lack which image (by the coordinator's id); nothing is sent by a preview.
    return planImages(this.options, volumed.plan, new Map(manifest.services.map((s) => [s.name, s])));
  }

  /** A manifest of an earlier committed deploy (with volumes) is applied as its rollback: its data reverts too. */
  async apply(
    manifest: DeployManifest,
    options: ApplyOptions,
    emit: EmitDeployEvent = () => {},
  ): Promise<ApplyResult> {
    const rollbackOf = options.rollbackOf ?? (await earlierDeployOf(this.options, manifest));
    return new Apply(this.options, manifest, { ...options, rollbackOf }, emit).run();
  }

  async rollback(
    deployId: string,
    actor: string,
    emit: EmitDeployEvent = () => {},
    options: { withoutVolumeRevert?: boolean } = {},
  ): Promise<ApplyResult> {
    const manifest = await rollbackManifest(this.options, deployId);
    const request = {
      actor,
      rollbackOf: deployId,
      force: true,
      withoutVolumeRevert: options.withoutVolumeRevert === true,
    };
    return new Apply(this.options, manifest, request, emit).run();
  }

  /**
   * Removes every service of a namespace as a deploy (namespaces.ts): its plan is shown first,
   * then lease, commit, routing events and cleanup as for any deploy. `preview` only plans.
   */
  async removeNamespace(
    namespace: string,
    options: { actor: string; preview: boolean; deleteVolumes?: boolean },
    emit: EmitDeployEvent = () => {},
  ): Promise<ApplyResult> {
    const [releases, instances, volumes] = await Promise.all([
      this.options.store.listReleases(namespace),
      this.options.store.listInstances(namespace),
      this.options.volumes?.listRecords(namespace) ?? Promise.resolve([]),
    ]);
    const deleteVolumes = options.deleteVolumes === true;
    // Volumes a removal kept (or failed to delete) can be deleted by removing the namespace again.
    if (!(deleteVolumes && volumes.length > 0))
      assertNamespaceKnown(
        namespace,
        releases.map((r) => r.value),
        instances.map((i) => i.value),
      );
    const manifest = removalManifest(namespace);
    if (options.preview) {
      const plan = withRemovalVolumes(
        await this.preview(manifest),
        volumes.map((v) => v.value),
        deleteVolumes,
        '<deploy>',
      );
      return { noop: !plan.changed, plan, status: null };
    }
    const request = { actor: options.actor, rollbackOf: null, removal: { deleteVolumes } };
    return new Apply(this.options, manifest, request, emit).run();
  }

  /**
   * A branch (branches.ts): a new namespace running the source's committed revisions, its volumes
   * cloned from the source's snapshots at its last commit, its own hostnames, lineage committed.
   * `branchPreview` only plans.
   */
  branchPreview(o: BranchOptions): Promise<BranchPlanView> {
    return previewBranch(this.options, o);
  }

  branch(o: BranchOptions, run: BranchRunOptions, emit: EmitDeployEvent = () => {}): Promise<ApplyResult> {
    return applyBranch(this.options, o, run, emit);
  }

  /** A branch's services deployed into its source (and its data, `withData`), lineage committed. */
  promotePreview(o: PromoteOptions): Promise<BranchPlanView> {
    return previewPromote(this.options, o);
  }

  promote(o: PromoteOptions, run: BranchRunOptions, emit: EmitDeployEvent = () => {}): Promise<ApplyResult> {
    return applyPromote(this.options, o, run, emit);
  }

  /** Each namespace with a committed release: services, instances, hostnames, newest deploy. */
  async namespaces(): Promise<NamespaceView[]> {
    const [releases, instances, machines] = await Promise.all([
      this.options.store.listReleases(),
      this.options.store.listInstances(),
      this.options.store.listMachines(),
    ]);
    const values = releases.map((r) => r.value);
    const lastDeploys = new Map<string, DeployStatusRecord>();
    for (const ns of new Set(values.map((r) => r.namespace))) {
      const [last] = await this.list({ namespace: ns, limit: 1 });
      if (last !== undefined) lastDeploys.set(ns, last);
    }
    return namespaceViews({
      releases: values,
      instances: instances.map((i) => i.value),
      machines,
      revisions: await readRevisions(this.options, values),
      lastDeploys,
    });
  }

  /** One page of deploys, newest first. */
  list(q: DeployListOptions = {}): Promise<DeployStatusRecord[]> {
    return listDeploys(this.options, q);
  }

  show(deployId: string): Promise<DeployDetail> {
    return showDeploy(this.options, deployId);
  }

  /** Host + path conflicts among the committed releases of every namespace, as the gateway sees them. */
  async routeConflicts(): Promise<RouteConflict[]> {
    const releases = (await this.options.store.listReleases()).map((r) => r.value);
    return storedRouteConflicts(releases, await readRevisions(this.options, releases));
  }

  /** Volumes a deploy that died before its commit stopped or reverted: restored (after `recover()`). */
  recoverVolumes(): Promise<VolumeRecoveryReport[]> {
    return recoverVolumes(this.options);
  }

  recover(): Promise<RecoveryReport[]> {
    return recoverDeploys(this.options);
  }
}
