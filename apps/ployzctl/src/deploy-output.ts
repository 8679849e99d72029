/**
 * Human rendering of deploy plans, progress events, history and details for `ployzctl deploy …`.
 * Pure: values in, lines out (tested in deploy-output.test.ts).
 */
import {
  type DeployDetailView,
  type DeployEvent,
  type DeployPlanView,
  formatBytes,
  type ImageEvent,
  type ImagePushResult,
} from '@ployz/protocol';
import { type DeployStatusRecord, EXIT_STATUS } from '@ployz/types';
import { lineageLines } from './lineage-output.ts';

const SIGN: Record<string, string> = { create: '+', replace: '~', update: '~', remove: '-', unchanged: '=' };

function short(rev: string | null): string {
  return rev === null ? '-' : rev.slice(0, 16);
}

/** Exit code of `deploy preview`: 0 when clean (nothing to change), 3 when there are changes. */
export function previewExitCode(
  plan: Pick<DeployPlanView, 'changed'>,
): typeof EXIT_STATUS.OK | typeof EXIT_STATUS.CHANGES_PENDING {
  return plan.changed ? EXIT_STATUS.CHANGES_PENDING : EXIT_STATUS.OK;
}

const VOLUME_SIGN: Record<DeployPlanView['volumes'][number]['action'], string> = {
  snapshot: '*',
  revert: '<',
  not_reverted: '=',
  no_snapshots: '!',
  clone: '+',
  empty: '+',
  replace: '~',
  keep: '=',
  delete: '-',
};

const IMAGE_SIGN: Record<DeployPlanView['images'][number]['action'], string> = {
  present: '=',
  send: '>',
  missing: '!',
  unknown: '?',
  pull: '<',
  unavailable: '!',
};

/** `ployz/hello:latest on m2: lacks it — e688846aa19a (206.0 MB) sent from m1 at the probe step`. */
export function imagePlanLine(i: DeployPlanView['images'][number]): string {
  const id = i.image_id !== null ? `${i.image_id.replace(/^sha256:/, '').slice(0, 12)}` : 'no id';
  const size = i.size_bytes !== null ? `, ${formatBytes(i.size_bytes)}` : '';
  switch (i.action) {
    case 'send':
      return `${i.image} on ${i.machine}: lacks it (${id}${size}), ${i.detail}`;
    case 'missing':
      return `${i.image} on ${i.machine}: missing, ${i.detail}; the start will fail IMAGE_MISSING`;
    case 'unknown':
      return `${i.image} on ${i.machine}: unknown, ${i.detail}`;
    case 'present':
      return `${i.image} on ${i.machine}: present (${id})`;
    case 'pull':
      return `${i.image} on ${i.machine}: pull, ${i.detail}`;
    case 'unavailable':
      return `${i.image} on ${i.machine}: unavailable, ${i.detail}; the deploy would fail IMAGE_PULL_FAILED before writing anything`;
  }
}

/** One line of an image's progress to one machine (deploy and `image push`). */
export function imageEventLine(e: ImageEvent): string {
  const id = e.image_id !== null ? ` ${e.image_id.replace(/^sha256:/, '').slice(0, 12)}` : '';
  const of = e.total_bytes !== null ? ` of ~${formatBytes(e.total_bytes)}` : '';
  const detail = e.detail !== undefined ? `: ${e.detail}` : '';
  switch (e.action) {
    case 'progress': {
      const pct =
        e.total_bytes !== null && e.total_bytes > 0
          ? ` (${Math.min(100, Math.round((100 * e.bytes) / e.total_bytes))} %)`
          : '';
      return `      image     ${e.image} → ${e.machine}: ${formatBytes(e.bytes)}${of}${pct}`;
    }
    case 'sending':
      return `      image     ${e.image} → ${e.machine}: sending${id}${of}${detail}`;
    default:
      return `      image     ${e.image} → ${e.machine}: ${e.action}${detail}`;
  }
}

/** The summary of `image push`: one line per machine. */
export function imagePushLines(r: ImagePushResult): string[] {
  const id = r.image_id.replace(/^sha256:/, '').slice(0, 12);
  if (r.machines.length === 0) return [`${r.image} (${id}): no other eligible machine; nothing sent.`];
  const out = [`${r.image} (${id}) from ${r.from}:`];
  for (const m of r.machines) {
    const what =
      m.action === 'sent'
        ? `sent, ${formatBytes(m.bytes)} in ${m.seconds.toFixed(1)} s`
        : m.action === 'present'
          ? `already there, nothing sent (${m.detail})`
          : `${m.action}: ${m.detail}`;
    out.push(`  ${m.machine.padEnd(16)} ${what}`);
  }
  return out;
}

export function planLines(plan: DeployPlanView): string[] {
  const out: string[] = [];
  if (!plan.changed) {
    out.push(
      `No changes. Namespace ${plan.namespace} matches the manifest (${plan.services.length} service(s) unchanged).`,
    );
    return out;
  }
  out.push(`Namespace ${plan.namespace}  manifest ${plan.manifest_hash.slice(0, 12)}`);
  out.push('Services:');
  for (const s of plan.services) {
    const rev =
      s.action === 'replace'
        ? `${short(s.previous_revision)} → ${short(s.revision)}`
        : short(s.revision ?? s.previous_revision);
    out.push(
      `  ${SIGN[s.action] ?? '?'} ${s.service.padEnd(20)} ${s.action.padEnd(9)} ${rev}  phase ${s.phase}`,
    );
    for (const slot of s.slots) {
      out.push(
        `      slot ${slot.slot} on ${slot.machine}: ${slot.action === 'keep' ? `keep ${slot.instance}` : `start ${slot.instance}`}`,
      );
    }
    for (const stop of s.stops)
      out.push(`      slot ${stop.slot} on ${stop.machine}: stop ${stop.instance} (${stop.reason})`);
  }
  if (plan.rollback_of !== null)
    out.push(`Rollback of ${plan.rollback_of}: its services and volumes are restored.`);
  if (plan.volumes.length > 0) {
    out.push('Volumes:');
    for (const v of plan.volumes)
      out.push(
        `  ${VOLUME_SIGN[v.action]} ${v.volume.padEnd(20)} ${v.action.padEnd(12)} on ${v.machine}: ${v.detail}`,
      );
  }
  const lacking = plan.images.filter((i) => i.action !== 'present');
  if (lacking.length > 0) {
    out.push('Images:');
    for (const i of lacking) out.push(`  ${IMAGE_SIGN[i.action]} ${imagePlanLine(i)}`);
  }
  out.push('Phases:');
  for (const p of plan.phases) {
    out.push(`  ${p.index + 1}. ${p.id} [${p.commit_policy}] ${p.does}`);
  }
  const s = plan.summary;
  out.push(
    `Plan: ${s.create} to create, ${s.replace} to replace, ${s.update} to update, ${s.remove} to remove, ${s.unchanged} unchanged (${s.starts} container(s) to start, ${s.stops} to stop).`,
  );
  return out;
}

/** One progress line per event that a person wants to see; null for the rest. */
export function eventLine(e: DeployEvent): string | null {
  switch (e.type) {
    case 'step': {
      if (e.state === 'started') return null;
      const phase = e.phase !== undefined ? ` (phase ${e.phase})` : '';
      const detail = e.detail !== undefined ? `: ${e.detail}` : '';
      return `[${e.step}/9] ${e.name}${phase} ${e.state === 'skipped' ? 'skipped' : 'done'}${detail}`;
    }
    case 'deploy':
      return `deploy ${e.deploy_id} (namespace ${e.namespace}${e.rollback_of ? `, rollback of ${e.rollback_of}` : ''})`;
    case 'machine':
      return e.available ? null : `      machine ${e.machine} unavailable: ${e.detail ?? 'no answer'}`;
    case 'instance': {
      const waited = e.waited_ms !== undefined ? ` after ${(e.waited_ms / 1000).toFixed(1)} s` : '';
      const progress = e.progress !== undefined ? ` [${e.progress}]` : '';
      return `      ${e.action.padEnd(9)} ${e.service} slot ${e.slot} on ${e.machine} (${e.instance})${waited}${progress}`;
    }
    case 'commit':
      return `      commit ${e.commit_id} (${e.kind})`;
    case 'volume':
      return `      volume    ${e.volume} on ${e.machine}: ${e.action.replace('_', ' ')}, ${e.detail}`;
    case 'image':
      return imageEventLine(e);
    case 'warning':
      return `      warning: ${e.message}`;
    case 'paused':
      return `      paused at step ${e.step} (${e.name}) by PLOYZ_TEST_PAUSE_AT_STEP, pid ${e.pid}`;
    // The plan is printed before the apply, the result and the error after it.
    case 'plan':
    case 'result':
    case 'error':
      return null;
    default: {
      const unknown: never = e;
      return unknown;
    }
  }
}

export function statusRow(s: DeployStatusRecord): string {
  return [
    s.deploy_id.padEnd(22),
    s.namespace.padEnd(14),
    s.state.padEnd(22),
    String(s.step).padEnd(4),
    s.started_at.replace(/\.\d+Z$/, 'Z').padEnd(21),
    s.rollback_of ? `rollback of ${s.rollback_of}` : s.error ? `${s.error.code}` : '',
  ].join(' ');
}

export const STATUS_HEADER = [
  'DEPLOY'.padEnd(22),
  'NAMESPACE'.padEnd(14),
  'STATE'.padEnd(22),
  'STEP',
  'STARTED'.padEnd(21),
  'NOTE',
].join(' ');

export function detailLines(d: DeployDetailView): string[] {
  const s = d.status;
  const out = [
    `deploy     ${s.deploy_id}`,
    `namespace  ${s.namespace}`,
    `state      ${s.state} (reached step ${s.step}/9)`,
    `manifest   ${s.manifest_hash}`,
    `actor      ${s.actor}`,
    `started    ${s.started_at}`,
    `updated    ${s.updated_at}`,
  ];
  if (s.rollback_of) out.push(`rollback   of ${s.rollback_of}`);
  // Every commit of a branch or promote carries its lineage; the last one's is the whole of it.
  const lineage = d.commits.findLast((c) => c.lineage !== null)?.lineage ?? null;
  if (lineage !== null) {
    const [head, ...rest] = lineageLines(lineage);
    out.push(`lineage    ${head}`, ...rest.map((line) => `         ${line}`));
  }
  // A message's further lines (a failed start's log tail) stay under the field, not at column 0.
  if (s.error) out.push(`error      ${s.error.code}: ${s.error.message.replaceAll('\n', '\n           ')}`);
  out.push('phases:');
  for (const p of d.phases) {
    out.push(
      `  ${p.index + 1}. ${p.phase} [${p.commit_policy}] ${p.state}${p.commit_id ? ` → ${p.commit_id}` : ''}  (${p.work.length} work item(s))`,
    );
  }
  out.push('commits:');
  if (d.commits.length === 0) out.push('  (none: nothing of this deploy is durable)');
  for (const c of d.commits) {
    out.push(`  ${c.id} (${c.kind}) at ${c.created_at}`);
    for (const svc of c.services)
      out.push(
        `      ${svc.service} ${svc.revision} slots ${svc.slots.map((x) => `${x.slot}@${x.machine}`).join(', ')}${svc.source_revision !== null ? ` ← ${svc.source_revision}` : ''}`,
      );
    for (const r of c.removed_services) out.push(`      ${r} removed`);
  }
  return out;
}
