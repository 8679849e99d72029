/**
 * The deploy engine's public face: preview, apply, history, rollback and crash recovery over
 * the ports of ports.ts. The daemon builds one at start (after `recover()`), and the local API
 * routes and RPC handlers call into it.
 */
import { deployId, instanceId } from '@ployz/identity';
import type { DeployStatusRecord } from '@ployz/types';
import { Apply, type ApplyOptions, type ApplyResult, previewPlan } from './apply.ts';
import type { EngineOptions } from './context.ts';
import type { EmitDeployEvent } from './events.ts';
import { type DeployDetail, listDeploys, rollbackManifest, showDeploy } from './history.ts';
import type { DeployPlan } from './plan.ts';
import { type RecoveryReport, recoverDeploys } from './recovery.ts';
import type { DeployManifest } from './spec.ts';

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

  async preview(manifest: DeployManifest): Promise<DeployPlan> {
    return (await previewPlan(this.options, manifest)).plan;
  }

  apply(
    manifest: DeployManifest,
    options: ApplyOptions,
    emit: EmitDeployEvent = () => {},
  ): Promise<ApplyResult> {
    return new Apply(this.options, manifest, options, emit).run();
  }

  async rollback(deployId: string, actor: string, emit: EmitDeployEvent = () => {}): Promise<ApplyResult> {
    const manifest = await rollbackManifest(this.options, deployId);
    return new Apply(this.options, manifest, { actor, rollbackOf: deployId, force: true }, emit).run();
  }

  list(namespace?: string): Promise<DeployStatusRecord[]> {
    return listDeploys(this.options, namespace);
  }

  show(deployId: string): Promise<DeployDetail> {
    return showDeploy(this.options, deployId);
  }

  recover(): Promise<RecoveryReport[]> {
    return recoverDeploys(this.options);
  }
}
