/**
 * Readiness: the loop (pure over an injected probe and clock) and the three probes.
 *
 * The first check runs at once, then one every `interval_ms`; each check has `timeout_ms`.
 * Until its first successful check an instance is *starting*: failures do not count, and it has
 * `start_timeout_ms` (60 s by default, never less than `start_period_ms`) to pass once — a
 * service that needs 20 s to listen on a loaded machine is slow, not broken. One that never
 * passes fails at that deadline, saying whether it never answered at all (connection refused,
 * timeouts) or answered and failed its check. A container that stops running fails at once.
 * The deploy's wait ends at the first success; `retries` (consecutive failures) is the rule for
 * an instance that has passed a check once.
 *
 * Between two scheduled checks the loop also probes early, 10 ms after a failure, then 20, 40, …
 * ms (never past the next scheduled check): most services listen within a few tens of ms, and a
 * deploy should not wait a whole interval (1 s by default) for them.
 */
import { connect } from 'node:net';
import type { DeployReadiness } from '@ployz/protocol';
import { MANIFEST_DEFAULTS, PloyzError, parseDuration } from '@ployz/types';
import type { Clock } from './clock.ts';

export type ProbeResult = { ok: true } | { ok: false; reason: string };
export type Probe = (timeoutMs: number) => Promise<ProbeResult>;

export interface ReadinessLoop {
  clock: Clock;
  probe: Probe;
  /** null while running; a reason once the container stopped. */
  exited: () => Promise<string | null>;
  signal: AbortSignal;
  what: string;
}

/** The first early probe after a failed check; each next one waits twice as long. */
export const FIRST_EARLY_GAP_MS = 10;

const DEFAULT_START_TIMEOUT_MS = parseDuration(MANIFEST_DEFAULTS.readiness_start_timeout) ?? 60_000;

/** The time a starting instance has to pass its first check. */
export function startTimeoutOf(spec: DeployReadiness): number {
  return Math.max(spec.start_timeout_ms ?? DEFAULT_START_TIMEOUT_MS, spec.start_period_ms);
}

/** How long the coordinator's wait for `deploy_ready` and the participant's own wait may take. */
export function readinessBudgetMs(r: DeployReadiness | null): number {
  if (r === null) return 10_000;
  // The participant's own deadline (the start timeout) plus one more check and some slack.
  return startTimeoutOf(r) + r.interval_ms + r.timeout_ms + 10_000;
}

/** Probe failures that mean nothing answered (as opposed to an answer that failed the check). */
const NO_ANSWER = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNRESET',
  'timeout',
  'TimeoutError',
]);

export interface ReadyResult {
  checks: number;
  /** From the first check to the successful one. */
  waited_ms: number;
}

export async function waitUntilReady(spec: DeployReadiness, loop: ReadinessLoop): Promise<ReadyResult> {
  const start = loop.clock.now().getTime();
  const deadline = start + startTimeoutOf(spec);
  let checks = 0;
  let answered = false;
  let last = 'no check ran';
  let due = start; // when the next scheduled check is due
  let gap = FIRST_EARLY_GAP_MS;
  for (;;) {
    if (loop.signal.aborted) throw loop.signal.reason ?? new Error('aborted');
    const at = loop.clock.now().getTime();
    if (at >= due) due = at + spec.interval_ms;
    // Whether the container still runs and the check itself, side by side. A passed check is
    // not held up by the engine's answer (it answered, so it runs); after a failed one the
    // engine's answer decides, so a stopped container still fails at once, whatever the check.
    checks++;
    const running = loop.exited();
    const result = await loop.probe(spec.timeout_ms);
    if (result.ok) {
      running.catch(() => {});
      return { checks, waited_ms: loop.clock.now().getTime() - start };
    }
    const exited = await running;
    if (exited !== null) {
      throw new PloyzError(
        'DEPLOY_READINESS_FAILED',
        `${loop.what} stopped before it became ready: ${exited}`,
        { details: { checks, last: exited } },
      );
    }
    const now = loop.clock.now().getTime();
    last = result.reason;
    if (!NO_ANSWER.has(result.reason)) answered = true;
    if (now >= deadline) {
      const seconds = `${Math.round((deadline - start) / 100) / 10} s`;
      const what = answered
        ? `answered but never passed its ${spec.kind} check within the ${seconds} start timeout`
        : `never answered its ${spec.kind} check within the ${seconds} start timeout`;
      throw new PloyzError(
        'DEPLOY_READINESS_FAILED',
        `${loop.what} ${what} (${checks} check(s), last: ${last}). ` +
          'Check the port it listens on and its log; a service that needs longer to start can raise `readiness.start_timeout`.',
        { details: { checks, last, start_timeout_ms: deadline - start, answered } },
      );
    }
    const wait = Math.max(0, Math.min(gap, due - now, deadline - now));
    gap *= 2;
    await loop.clock.sleep(wait, loop.signal);
  }
}

export function httpProbe(ip: string, port: number, path: string): Probe {
  return async (timeoutMs) => {
    try {
      const res = await fetch(`http://${ip}:${port}${path}`, {
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
        redirect: 'manual',
      });
      await res.body?.cancel();
      return res.status >= 200 && res.status < 400
        ? { ok: true }
        : { ok: false, reason: `HTTP ${res.status}` };
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return { ok: false, reason: cause ?? (err instanceof Error ? err.name : String(err)) };
    }
  };
}

export function tcpProbe(ip: string, port: number): Probe {
  return (timeoutMs) =>
    new Promise((resolve) => {
      const socket = connect({ host: ip, port });
      const done = (r: ProbeResult) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => done({ ok: false, reason: 'timeout' }), Math.max(1, timeoutMs));
      socket.once('connect', () => done({ ok: true }));
      socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, reason: e.code ?? e.message }));
    });
}
