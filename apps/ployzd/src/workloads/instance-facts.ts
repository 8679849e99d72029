/**
 * Facts checked against reality. Pure: an instance record and what the engine says about its
 * container in, a verdict out. A record whose container is gone, replaced, stopped or at another
 * address is *unverified*: its `error` says why, so the routable predicate drops it at once; it is
 * routable again only when a later check finds container id, address and running state agree.
 * Only errors this check wrote are ever cleared.
 */
import type { InstanceRecord } from '@ployz/types';

/** What the engine reports for one workload container (found by its instance label). */
export interface EngineFact {
  container_id: string;
  running: boolean;
  /** Its address on the machine's bridge; null when it has none (not running). */
  ip: string | null;
}

export type FactMismatch = 'container_missing' | 'container_replaced' | 'not_running' | 'address_changed';

/** The prefix of the `error` an unverified instance carries (`unverified: not_running`). */
export const UNVERIFIED = 'unverified: ';

/** The first way the record disagrees with the engine, or null when the engine confirms it. */
export function factMismatch(record: InstanceRecord, fact: EngineFact | undefined): FactMismatch | null {
  if (fact === undefined) return 'container_missing';
  if (record.container_id !== null && record.container_id !== fact.container_id) return 'container_replaced';
  if (!fact.running) return 'not_running';
  if (fact.ip !== record.ip) return 'address_changed';
  return null;
}

/** Only running instances carry a routing promise worth checking; the others are a deploy's business. */
export function isChecked(record: InstanceRecord, machine: string): boolean {
  return record.machine === machine && record.state === 'running';
}

/**
 * The record after a check, or undefined when it stays as it is: a mismatch sets the unverified
 * error (unless another error already keeps it unroutable), a match clears only that error.
 */
export function afterCheck(
  record: InstanceRecord,
  mismatch: FactMismatch | null,
  at: string,
): InstanceRecord | undefined {
  const ours = record.error?.startsWith(UNVERIFIED) ?? false;
  if (mismatch === null) return ours ? { ...record, error: null, updated_at: at } : undefined;
  const error = `${UNVERIFIED}${mismatch}`;
  if (record.error === error || (record.error !== null && !ours)) return undefined;
  return { ...record, error, updated_at: at };
}
