/**
 * What `ployzctl cert ls|show` and `status` show per hostname: the stored certificate (serial,
 * lifetime, when it is renewed) and its renewal state (failing: how often, the last error, the
 * next attempt). Pure over the records.
 */
import type { CertificateView } from '@ployz/protocol';
import type { AcmeCertificateRecord, AcmeRenewalRecord } from './records.ts';
import { renewAt } from './schedule.ts';

export function certificateView(
  hostname: string,
  cert: AcmeCertificateRecord | null,
  renewal: AcmeRenewalRecord | null,
  wanted: boolean,
): CertificateView {
  return {
    hostname,
    wanted,
    state: renewal?.state ?? 'pending',
    serial: cert?.serial ?? null,
    not_before: cert?.not_before ?? null,
    not_after: cert?.not_after ?? null,
    renew_at: cert === null ? null : renewAt(cert).toISOString(),
    issued_at: cert?.issued_at ?? null,
    directory_url: cert?.directory_url ?? null,
    failures: renewal?.failures ?? 0,
    last_error: renewal?.last_error ?? null,
    last_attempt_at: renewal?.last_attempt_at ?? null,
    next_attempt_at: renewal?.next_attempt_at ?? null,
    renewer: renewal?.renewer ?? null,
  };
}
