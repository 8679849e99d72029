/**
 * Progress events of a deploy: what the CLI prints live, what `--json` and the local API's NDJSON
 * stream carry. One event per line on the wire.
 */
import type { DeployStatusRecord, ErrorBody } from '@ployz/types';
import type { DeployPlan } from './plan.ts';

export const STEPS = [
  { step: 1, name: 'preview', title: 'preview the manifest against stored intent' },
  { step: 2, name: 'lease', title: 'acquire the namespace deploy lease' },
  { step: 3, name: 'probe', title: 'probe eligible machines for live capacity' },
  { step: 4, name: 'applying', title: 'write applying status and pending phase records' },
  { step: 5, name: 'phases', title: 'start candidates and wait for readiness' },
  { step: 6, name: 'checkpoints', title: 'append checkpoint commits' },
  { step: 7, name: 'final_commit', title: 'append the final commit (point of no return)' },
  { step: 8, name: 'routing', title: 'publish routing events' },
  { step: 9, name: 'cleanup', title: 'drain and remove old instances' },
] as const;

export type StepNumber = (typeof STEPS)[number]['step'];
export type StepName = (typeof STEPS)[number]['name'];

export function stepName(step: number): StepName | 'unknown' {
  return STEPS.find((s) => s.step === step)?.name ?? 'unknown';
}

export type DeployEvent =
  | {
      type: 'step';
      step: StepNumber;
      name: StepName;
      state: 'started' | 'done' | 'skipped';
      phase?: string;
      detail?: string;
      at: string;
    }
  | { type: 'plan'; plan: DeployPlan }
  | { type: 'deploy'; deploy_id: string; namespace: string; rollback_of: string | null }
  | {
      type: 'instance';
      action: 'starting' | 'ready' | 'draining' | 'removed' | 'discarded';
      service: string;
      slot: number;
      machine: string;
      instance: string;
      at: string;
    }
  | { type: 'machine'; machine: string; available: boolean; detail?: string }
  | { type: 'commit'; commit_id: string; kind: 'checkpoint' | 'final'; phase: string | null }
  | { type: 'paused'; step: number; name: string; pid: number }
  | { type: 'result'; noop: boolean; status: DeployStatusRecord | null; plan: DeployPlan }
  | { type: 'error'; error: ErrorBody; state: DeployStatusRecord['state'] | null };

export type EmitDeployEvent = (event: DeployEvent) => void;
