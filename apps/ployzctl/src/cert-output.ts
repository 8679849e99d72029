/**
 * Human lines of `ployzctl cert ls|show` and the renewal part of `status`: the certificates of
 * `tls = "auto"` routes as ployzd's renewer keeps them (docs/adr/0015-acme.md). Pure (tested in
 * cert-output.test.ts).
 */
import type { CertificateList, CertificateView, StatusView } from '@ployz/protocol';
import { table } from './ops-output.ts';
import { age } from './volume-output.ts';

/** `in 5m` / `5m ago` for a time after / before now. */
function when(at: string | null, now: Date): string {
  if (at === null) return '-';
  return Date.parse(at) >= now.getTime()
    ? `in ${age(now.toISOString(), new Date(at))}`
    : `${age(at, now)} ago`;
}

function errorText(view: Pick<CertificateView, 'last_error'>): string {
  return view.last_error === null ? '' : `${view.last_error.code}: ${view.last_error.message}`;
}

export const CERT_HEADER = ['HOSTNAME', 'STATE', 'SERIAL', 'EXPIRES', 'RENEWS', 'FAILURES', 'LAST ERROR'];

export function certLines(list: CertificateList, now: Date): string[] {
  const directory =
    list.directory_url === null
      ? 'directory: none on this machine (--acme-directory off); another machine may renew'
      : `directory: ${list.directory_url}`;
  if (list.certificates.length === 0) return [directory, 'no certificates: no route has tls = "auto"'];
  const rows = list.certificates.map((c) => [
    c.wanted ? c.hostname : `${c.hostname} (no route)`,
    c.state,
    c.serial?.slice(0, 16) ?? '-',
    when(c.not_after, now),
    c.state === 'failing' ? `retry ${when(c.next_attempt_at, now)}` : when(c.renew_at, now),
    String(c.failures),
    errorText(c),
  ]);
  return [directory, ...table([CERT_HEADER, ...rows])];
}

export function certDetailLines(c: CertificateView, now: Date): string[] {
  const at = (label: string, iso: string | null) =>
    `${label.padEnd(14)}${iso ?? '-'}${iso ? ` (${when(iso, now)})` : ''}`;
  return [
    `hostname      ${c.hostname}${c.wanted ? '' : ' (no route asks for it any more)'}`,
    `state         ${c.state}`,
    `serial        ${c.serial ?? '-'}`,
    at('not before', c.not_before),
    at('not after', c.not_after),
    at('renews at', c.renew_at),
    at('issued', c.issued_at),
    `directory     ${c.directory_url ?? '-'}`,
    `renewer       ${c.renewer ?? '-'}`,
    `failures      ${c.failures}`,
    at('last attempt', c.last_attempt_at),
    at('next attempt', c.next_attempt_at),
    `last error    ${errorText(c) || '-'}`,
  ];
}

/** `status`: how many certificates in each state; each failing hostname, why, and what still serves. */
export function certificateStatusLines(status: StatusView['certificates'], now: Date): string[] {
  if (status === null || status === undefined) return [];
  if (status.error !== null) return [`certificates: renewal state unknown (${status.error})`];
  if (status.total === 0) return ['certificates: none (no route has tls = "auto")'];
  const off = status.directory_url === null ? '; no renewer on this machine' : '';
  return [
    `certificates: ${status.total} (${status.valid} valid, ${status.pending} pending, ${status.failing.length} failing)${off}`,
    ...status.failing.map((f) => {
      const serving =
        f.not_after === null ? 'no certificate yet' : `the stored one serves until ${f.not_after}`;
      return `  renewal failing: ${f.hostname} — ${f.failures} failure(s), ${errorText(f) || 'no error recorded'}; next attempt ${when(f.next_attempt_at, now)}; ${serving}`;
    }),
  ];
}
