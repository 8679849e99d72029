/**
 * Progress events of a deploy: what the CLI prints live, what `--json` and the local API's NDJSON
 * stream carry. One event per line on the wire.
 */
import { type DeployEvent, type InstanceAction, STEPS, type StepName } from '@ployz/protocol';
import type { InstanceRecord } from '@ployz/types';

// The events' shape is the wire contract (@ployz/protocol deploy-events.ts).
export {
  type DeployEvent,
  type InstanceAction,
  STEPS,
  type StepName,
  type StepNumber,
} from '@ployz/protocol';

export function stepName(step: number): StepName | 'unknown' {
  return STEPS.find((s) => s.step === step)?.name ?? 'unknown';
}

export type EmitDeployEvent = (event: DeployEvent) => void;

/** The one builder of an `instance` event: what happened to which instance, when. */
export function instanceEvent(
  action: InstanceAction,
  instance: Pick<InstanceRecord, 'id' | 'service' | 'slot' | 'machine'>,
  at: string,
  extra: { waited_ms?: number; progress?: string } = {},
): DeployEvent {
  return {
    type: 'instance',
    action,
    service: instance.service,
    slot: instance.slot,
    machine: instance.machine,
    instance: instance.id,
    at,
    ...extra,
  };
}
