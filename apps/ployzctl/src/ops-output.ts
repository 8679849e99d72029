/**
 * How `ployzctl ps`, `logs` and `namespace ls` print for people, and the arguments they share
 * (`<namespace>/<service>`, `--since 10m`). Pure.
 */
import type { LogsEntry, NamespaceView, PsView } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { age } from './volume-output.ts';

/** `shop/web` → its namespace and service; INVALID_ARGUMENT otherwise. */
export function parseTarget(text: string): { namespace: string; service: string } {
  const m = /^([a-z0-9][a-z0-9-]*)\/([a-z0-9][a-z0-9-]*)$/.exec(text);
  if (m === null || m[1] === undefined || m[2] === undefined) {
    throw new PloyzError('INVALID_ARGUMENT', `'${text}' is not <namespace>/<service> (e.g. shop/web)`, {
      details: { target: text },
    });
  }
  return { namespace: m[1], service: m[2] };
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: a duration before `now` (`90s`, `10m`, `2h`, `1d`) or an RFC 3339 time, as an ISO time. */
export function parseSince(text: string, now: Date): string {
  const m = /^(\d+)([smhd])$/.exec(text);
  if (m !== null) return new Date(now.getTime() - Number(m[1]) * (UNITS[m[2] ?? 's'] ?? 1000)).toISOString();
  if (
    /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(text) &&
    !Number.isNaN(Date.parse(text))
  )
    return text;
  throw new PloyzError(
    'INVALID_ARGUMENT',
    `--since ${text}: give a duration (30s, 10m, 2h, 1d) or an RFC 3339 time (2026-12-02T10:00:00Z)`,
    { details: { since: text } },
  );
}

export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

export const PS_HEADER = [
  'SERVICE',
  'INSTANCE',
  'MACHINE',
  'STATE',
  'READY',
  'REVISION',
  'DEPLOY',
  'AGE',
  'PORTS',
];

/** One row per instance under its service; READY is `yes` or `no (<reason>)`, `-` for a service without instances. */
export function psLines(view: PsView): string[] {
  const now = new Date(view.at);
  const rows: string[][] = [PS_HEADER];
  for (const s of view.services) {
    const name = `${s.namespace}/${s.service}`;
    if (s.instances.length === 0)
      rows.push([name, '-', '-', '-', '-', s.revision ?? '-', s.deploy ?? '-', '-', '-']);
    for (const i of s.instances) {
      const ready = i.unroutable === null ? 'yes' : `no (${i.unroutable})`;
      const ports = Object.entries(i.ports)
        .map(([n, p]) => `${n}:${p}`)
        .join(',');
      rows.push([
        name,
        i.active ? i.instance : `${i.instance}*`,
        i.machine,
        i.state,
        ready,
        i.revision,
        i.deploy,
        age(i.created_at, now),
        ports || '-',
      ]);
    }
  }
  return table(rows);
}

/** `<instance>@<machine> | <text>`, stderr marked; notices in brackets. Null for nothing to print. */
export function logEntryLine(entry: LogsEntry, withTime: boolean): string {
  switch (entry.type) {
    case 'line':
      return `${withTime ? `${entry.at} ` : ''}${entry.instance}@${entry.machine}${entry.stream === 'stderr' ? ' !' : ''} | ${entry.text}`;
    case 'instance':
      return `[${entry.instance}@${entry.machine} ${entry.event}]`;
    case 'unreachable':
      return `[${entry.instance}@${entry.machine} missing: ${entry.error.code}: ${entry.error.message}]`;
    default: {
      const never: never = entry;
      return JSON.stringify(never);
    }
  }
}

export function namespaceLines(namespaces: readonly NamespaceView[], now: Date): string[] {
  const rows = [['NAMESPACE', 'SERVICES', 'INSTANCES', 'HOSTNAMES', 'LAST DEPLOY']];
  for (const n of namespaces) {
    const last = n.last_deploy;
    rows.push([
      n.namespace,
      n.services.join(',') || '-',
      `${n.routable}/${n.instances}`,
      n.hostnames.join(',') || '-',
      last === null ? '-' : `${last.deploy_id} ${last.state} ${age(last.updated_at, now)} ago`,
    ]);
  }
  return table(rows);
}
