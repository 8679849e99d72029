/**
 * Identifiers. Deploy ids sort by creation time as plain strings: `dep-` + the UTC millisecond
 * time in base36, fixed width 9 (good until the year 5188), + 8 random base36 characters.
 */
import { randomInt } from 'node:crypto';
import { PloyzError } from '@ployz/types';

const B36 = '0123456789abcdefghijklmnopqrstuvwxyz';
const TIME_WIDTH = 9;
const MAX_TIME = 36 ** TIME_WIDTH - 1;

export function randomBase36(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += B36.charAt(randomInt(36));
  return out;
}

/** `dep-<9 base36 time><8 base36 random>`; lexicographic order is time order (to the ms). */
export function deployId(nowMs: number = Date.now()): string {
  if (!Number.isSafeInteger(nowMs) || nowMs < 0 || nowMs > MAX_TIME) {
    throw new PloyzError('INVALID_ARGUMENT', `deploy id time out of range: ${nowMs}`);
  }
  return `dep-${nowMs.toString(36).padStart(TIME_WIDTH, '0')}${randomBase36(8)}`;
}

const DEPLOY_ID = /^dep-([0-9a-z]{9})[0-9a-z]{8}$/;

/** The creation time (ms since epoch) of a deploy id made by `deployId`, else null. */
export function deployIdTime(id: string): number | null {
  const m = DEPLOY_ID.exec(id);
  return m?.[1] === undefined ? null : Number.parseInt(m[1], 36);
}

/** Instance ids are readable in `docker ps`: `<namespace>-<service>-<slot>-<8 random>`. */
export function instanceId(input: { namespace: string; service: string; slot: number }): string {
  if (!Number.isSafeInteger(input.slot) || input.slot < 0) {
    throw new PloyzError('INVALID_ARGUMENT', `slot must be a non-negative integer, got ${input.slot}`);
  }
  return `${input.namespace}-${input.service}-${input.slot}-${randomBase36(8)}`;
}

/**
 * Deterministic commit ids, so a retried append is deduplicated by the stream:
 * `<deploy>-final` for the final commit, `<deploy>-cp-<phase>` for a checkpoint.
 */
export function commitId(
  deploy: string,
  commit: { kind: 'final' } | { kind: 'checkpoint'; phase: string },
): string {
  return commit.kind === 'final' ? `${deploy}-final` : `${deploy}-cp-${commit.phase}`;
}
