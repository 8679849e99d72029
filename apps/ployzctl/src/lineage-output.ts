/**
 * A deploy's lineage as lines (`deploy show`, `branch preview`): where a branch's or a promote's
 * services and volumes came from. Pure (tested in branch-output.test.ts).
 */
import { formatBytes } from '@ployz/protocol';
import type { CommitSnapshot, Lineage } from '@ployz/types';

function short(id: string | null): string {
  return id === null ? '-' : id.slice(0, 16);
}

function snapshotText(s: CommitSnapshot): string {
  return `${s.label} (${s.driver} ${s.id.slice(0, 12)}, ${formatBytes(s.bytes)} referenced)`;
}

/** `branch of shop at dep-…, host suffix pr-7`, then one line per service and per volume. */
export function lineageLines(l: Lineage, indent = ''): string[] {
  const what = l.kind === 'branch' ? 'branch of' : 'promote of the branch';
  const suffix = l.host_suffix !== null ? `, host suffix ${l.host_suffix}` : '';
  const out = [`${indent}${what} ${l.from_namespace} at ${l.from_deploy}${suffix}`];
  for (const s of l.services) {
    const from =
      s.from_revision === null
        ? 'new in the branch manifest'
        : `${l.from_namespace}/${s.service} ${short(s.from_revision)} (${s.from_deploy})${s.overridden ? ', overridden by the branch manifest' : ''}`;
    out.push(`${indent}  service ${s.service.padEnd(18)} ← ${from}`);
  }
  for (const v of l.volumes) {
    const name = v.slot === null ? v.volume : `${v.volume}-${v.slot}`;
    const from = `${l.from_namespace}/${name}`;
    let what: string;
    switch (v.data) {
      case 'clone':
        what = `clone of ${from} at ${v.snapshot !== null ? snapshotText(v.snapshot) : 'a snapshot taken at the deploy'}`;
        break;
      case 'replaced':
        what = `replaced by ${from} at ${v.snapshot !== null ? snapshotText(v.snapshot) : 'a snapshot taken at the deploy'}${v.previous !== null ? `; its own data kept as ${v.previous.label}` : ''}`;
        break;
      case 'empty':
        what = 'empty (not cloned)';
        break;
      case 'kept':
        what = 'keeps its own data';
        break;
      default: {
        const unknown: never = v.data;
        what = String(unknown);
      }
    }
    out.push(`${indent}  volume  ${name.padEnd(18)} ${what}`);
  }
  return out;
}
