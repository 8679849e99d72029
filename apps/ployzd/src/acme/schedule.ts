/**
 * When the renewer works on a hostname, as pure functions of its stored records: a certificate is
 * renewed once two thirds of its lifetime have passed; a failed attempt waits an exponential
 * backoff (capped) before the next one; no certificate yet means now.
 */
import { httpRoutesOf } from '@ployz/routing';
import type { RoutingSnapshot } from '@ployz/types';
import type { AcmeCertificateRecord, AcmeRenewalRecord } from './records.ts';

/** Two thirds of the way from not-before to not-after. */
export function renewAt(cert: Pick<AcmeCertificateRecord, 'not_before' | 'not_after'>): Date {
  const from = Date.parse(cert.not_before);
  const to = Date.parse(cert.not_after);
  return new Date(from + ((to - from) * 2) / 3);
}

export interface Backoff {
  minMs: number;
  maxMs: number;
}

/** After the n-th failure in a row (n ≥ 1): min · 2^(n-1), at most max. */
export function backoffMs(failures: number, backoff: Backoff): number {
  const n = Math.max(1, failures);
  return Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(n - 1, 30));
}

export type RenewalDecision =
  | { due: true; why: 'missing' | 'renewal_time' }
  | { due: false; why: 'fresh' | 'backoff'; until: Date };

export function renewalDecision(
  now: Date,
  cert: AcmeCertificateRecord | null,
  renewal: AcmeRenewalRecord | null,
): RenewalDecision {
  if (renewal?.state === 'failing' && renewal.next_attempt_at !== null) {
    const next = new Date(renewal.next_attempt_at);
    if (next > now) return { due: false, why: 'backoff', until: next };
  }
  if (cert === null) return { due: true, why: 'missing' };
  const at = renewAt(cert);
  return at > now ? { due: false, why: 'fresh', until: at } : { due: true, why: 'renewal_time' };
}

/** The hostnames of committed releases whose current revision routes them with `tls = "auto"`. */
export function tlsAutoHostnames(snapshot: Pick<RoutingSnapshot, 'releases' | 'revisions'>): string[] {
  const revisions = new Map(snapshot.revisions.map((r) => [r.id, r]));
  const out = new Set<string>();
  for (const release of snapshot.releases) {
    const spec = revisions.get(release.revision)?.spec;
    if (spec === undefined) continue;
    for (const route of httpRoutesOf(spec)) {
      if (!route.tlsAuto) continue;
      for (const h of route.hostnames) if (!h.startsWith('*.')) out.add(h);
    }
  }
  return [...out].sort();
}
