/**
 * Human lines of `ployzctl machine storage promote` (issue 19): the plan ployzd computed — the
 * members with their region, round trip and health, what moves, every guardrail, the verdict —
 * and the store part of `status`.
 * Pure (tested in store-output.test.ts).
 */
import type {
  StatusView,
  StoragePromotePlanView,
  StoragePromoteProgress,
  StoragePromoteResult,
} from '@ployz/protocol';
import { table } from './ops-output.ts';

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function promotePlanLines(plan: StoragePromotePlanView): string[] {
  const lines = [`store: ${plan.from} → ${plan.to} replicas (now on ${plan.current_storage})`, ''];
  lines.push(
    ...table([
      ['MACHINE', 'REGION', 'ROLE', 'RTT', 'REACHABLE', 'HEALTHY', 'HOLDS STORE'],
      ...plan.members.map((m) => [
        m.machine,
        m.region,
        m.region_role,
        m.rtt_ms === null ? '-' : `${m.rtt_ms} ms`,
        m.reachable ? 'yes' : 'no',
        m.healthy ? 'yes' : 'no',
        m.holds_store_now ? 'yes' : '',
      ]),
    ]),
    '',
    `moves ${plan.messages} messages, ${bytes(plan.bytes)}:`,
    ...table([
      ['ASSET', 'KIND', 'MESSAGES', 'BYTES', 'LAST ID'],
      ...plan.assets.map((a) => [a.asset, a.kind, String(a.messages), bytes(a.bytes), a.lastId ?? '-']),
    ]),
    '',
    `guardrails (RTT bound ${plan.rtt_bound_ms} ms; failure domains: ${plan.regions.join(', ')}):`,
    ...plan.checks.map(
      (c) =>
        `  ${c.ok ? 'ok  ' : c.blocking ? 'FAIL' : 'warn'} ${c.check}${c.machine ? ` ${c.machine}` : ''}: ${c.detail}`,
    ),
  );
  if (plan.promotion !== null) {
    const p = plan.promotion;
    lines.push(
      '',
      `last promotion: ${p.run} ${p.phase} (coordinator ${p.coordinator}, ${p.members.join(', ')}, until ${p.expires_at})${p.error ? ` — ${p.error.code}: ${p.error.message}` : ''}`,
    );
  }
  lines.push(
    '',
    plan.refusal === null
      ? 'plan: applicable; nothing was changed. Run it again with --yes to apply it.'
      : `refused: ${plan.refusal.code}: ${plan.refusal.message}`,
  );
  return lines;
}

/** One line of a running promotion. */
export function promoteProgressLine(p: StoragePromoteProgress): string {
  return `${p.at.slice(11, 23)} ${p.step}${p.machine === null ? '' : ` ${p.machine}`}: ${p.detail}`;
}

/** The end of `promote --yes`: what was verified, which machines switched, which did not yet. */
export function promoteResultLines(r: StoragePromoteResult): string[] {
  const messages = r.verified.reduce((n, a) => n + a.messages, 0);
  const lines = [
    '',
    `store promoted to 3 replicas on ${r.members.join(', ')} (run ${r.run}, ${(r.duration_ms / 1000).toFixed(1)} s): ${messages} messages in ${r.verified.length} assets verified`,
    `switched over: ${r.switched.length === 0 ? 'none' : r.switched.join(', ')}`,
  ];
  for (const p of r.pending)
    lines.push(
      `not switched yet: ${p.machine} (${p.reason}); it switches by itself once it reads the record`,
    );
  return lines;
}

/** `status`: replicas and leader, the assets whose replicas lag, the promotion in progress or last. */
export function storeStatusLines(store: StatusView['store']): string[] {
  if (store === undefined || store === null) return [];
  const peers = store.peers ?? [];
  const missing = peers.filter((p) => !p.reachable).map((p) => p.machine);
  const memberLine =
    peers.length === 0
      ? []
      : [
          `  members: ${peers.map((p) => (p.reachable ? `${p.machine} ok (${p.rtt_ms} ms)` : `${p.machine} MISSING (${p.problem ?? 'unreachable'})`)).join(', ')}`,
        ];
  if (store.error !== null) {
    return [
      `store: unknown (${store.error})${missing.length > 0 ? `; missing peers: ${missing.join(', ')}` : ''}`,
      ...memberLine,
    ];
  }
  const lagging = store.assets.filter((a) => a.lagging.length > 0 || a.current.length < a.replicas);
  const lines = [
    `store: R${store.replicas}, leader ${store.leader ?? 'none'}; ${
      lagging.length === 0
        ? `all ${store.assets.length} assets current on every replica`
        : `${lagging.length} of ${store.assets.length} assets lagging`
    }`,
    ...lagging.map(
      (a) =>
        `  ${a.asset}: current ${a.current.join(', ') || 'none'}; lagging ${a.lagging.map((l) => `${l.server} (${l.lag} behind, seen ${l.active_ms} ms ago)`).join(', ') || 'none'}`,
    ),
    ...(missing.length > 0 ? [`  missing peers: ${missing.join(', ')}`] : []),
    ...memberLine,
  ];
  const p = store.promotion;
  if (p !== null) {
    lines.push(
      `store promotion: ${p.phase} (${p.from} → ${p.to} on ${p.members.join(', ')}, run ${p.run}, coordinator ${p.coordinator}${p.error ? `, ${p.error.code}: ${p.error.message}` : ''})`,
    );
  }
  return lines;
}
