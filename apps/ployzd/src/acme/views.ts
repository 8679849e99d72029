/**
 * What `ployzctl cert ls|show` and `status` show per hostname: the stored certificate (serial,
 * lifetime, when it is renewed) and its renewal state (failing: how often, the last error, the
 * next attempt). Pure over the records.
 */
import type { CertificatesStatus, CertificateView } from '@ployz/protocol';
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

/** Every hostname `cert ls` lists: asked for by a route now, or with a stored record. Sorted. */
export function certificateViews(
  wanted: readonly string[],
  certs: readonly AcmeCertificateRecord[],
  renewals: readonly AcmeRenewalRecord[],
): CertificateView[] {
  const byCert = new Map(certs.map((c) => [c.hostname, c]));
  const byRenewal = new Map(renewals.map((r) => [r.hostname, r]));
  const want = new Set(wanted);
  const hosts = [...new Set([...wanted, ...byCert.keys(), ...byRenewal.keys()])].sort();
  return hosts.map((h) => certificateView(h, byCert.get(h) ?? null, byRenewal.get(h) ?? null, want.has(h)));
}

/** The renewal part of `status`: counts of the hostnames routes ask for, and the failing ones. */
export function certificatesStatus(
  directoryUrl: string | null,
  views: readonly CertificateView[],
): CertificatesStatus {
  const wanted = views.filter((v) => v.wanted);
  return {
    directory_url: directoryUrl,
    total: wanted.length,
    valid: wanted.filter((v) => v.state === 'valid').length,
    pending: wanted.filter((v) => v.state === 'pending').length,
    failing: wanted
      .filter((v) => v.state === 'failing')
      .map((v) => ({
        hostname: v.hostname,
        failures: v.failures,
        last_error: v.last_error,
        last_attempt_at: v.last_attempt_at,
        next_attempt_at: v.next_attempt_at,
        not_after: v.not_after,
      })),
    error: null,
  };
}
