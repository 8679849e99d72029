/**
 * Store errors as they happen, for whoever measures them (ployzd's metrics): each typed error the
 * store raises — STORE_UNAVAILABLE, a lost compare-and-set (STORE_CONFLICT, also when a retrying
 * `modify` recovers from it), STORE_CORRUPT — is published on the `node:diagnostics_channel`
 * channel `STORE_ERROR_CHANNEL`, only while someone subscribes. The store itself does not log.
 */
import { channel } from 'node:diagnostics_channel';
import type { PloyzError } from '@ployz/types';

export const STORE_ERROR_CHANNEL = 'ployz:store:error';

/** What is published: the error's code and message (which names the bucket or stream and key). */
export interface StoreErrorReport {
  code: string;
  message: string;
}

const errors = channel(STORE_ERROR_CHANNEL);

/** Publishes `error` (when observed) and returns it, for `throw reported(…)`. */
export function reported(error: PloyzError): PloyzError {
  if (errors.hasSubscribers) {
    const report: StoreErrorReport = { code: error.code, message: error.message };
    errors.publish(report);
  }
  return error;
}
