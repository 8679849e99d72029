/**
 * A failed apply: discard the candidates no commit made live, mark the unfinished phases
 * failed, and settle status to what is true — `failed` when nothing was committed (nothing live
 * changed), `FailedAfterCheckpoint` once a commit exists. Rethrows with the deploy id and state.
 */
import { type DeployStatusRecord, PloyzError, toErrorBody } from '@ployz/types';
import { instanceEvent } from '../model/events.ts';
import { discardCandidates } from './cleanup.ts';
import type { DeployRun } from './run.ts';

export async function failRun(run: DeployRun, err: unknown): Promise<never> {
  const committedServices = new Set(run.commits.flatMap((c) => c.services.map((s) => s.service)));
  const state: DeployStatusRecord['state'] = run.commits.length === 0 ? 'failed' : 'FailedAfterCheckpoint';
  const uncommitted = [...run.candidates.values()].filter((c) => !committedServices.has(c.service));
  for (const rec of await discardCandidates(run.engine, uncommitted)) {
    run.emit(instanceEvent('discarded', rec, run.now()));
  }
  const body = toErrorBody(err);
  const error = { code: body.code, message: body.message };
  for (const p of run.phases.values()) {
    if (p.state !== 'committed')
      await run
        .writePhase(p.phase, { state: 'failed', error: p.state === 'running' ? error : null })
        .catch(() => {});
  }
  await run.writeStatus({ state, error }).catch(() => {});
  run.emit({ type: 'error', error: body, state });
  const wrapped =
    err instanceof PloyzError
      ? err
      : new PloyzError(
          state === 'failed' ? 'DEPLOY_FAILED' : 'DEPLOY_FAILED_AFTER_CHECKPOINT',
          body.message,
          {
            cause: err,
          },
        );
  throw new PloyzError(wrapped.code, wrapped.message, {
    details: { ...(wrapped.details ?? {}), deploy_id: run.deployId, state },
    cause: wrapped.cause ?? wrapped,
  });
}
