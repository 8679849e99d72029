/**
 * Readiness: the loop (pure over an injected probe and clock) and the three probes.
 *
 * The first check runs at once, then one every `interval_ms`; each check has `timeout_ms`.
 * Failures inside `start_period_ms` after start do not count; after it, `retries` consecutive
 * failures give up with DEPLOY_READINESS_FAILED. A container that stops running fails at once.
 *
 * Between two scheduled checks the loop also probes early, 10 ms after a failure, then 20, 40, …
 * ms (never past the next scheduled check): most services listen within a few tens of ms, and a
 * deploy should not wait a whole interval (1 s by default) for them. An early probe that succeeds
 * makes the instance ready; one that fails does not count towards `retries`.
 */
import { connect } from 'node:net';
import { PloyzError } from '@ployz/types';
import type { Clock } from './ports.ts';
import type { ReadinessSpec } from './spec.ts';

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

export async function waitUntilReady(spec: ReadinessSpec, loop: ReadinessLoop): Promise<{ checks: number }> {
  const start = loop.clock.now().getTime();
  let failures = 0;
  let checks = 0;
  let last = 'no check ran';
  let due = start; // when the next scheduled (counted) check is due
  let gap = FIRST_EARLY_GAP_MS;
  for (;;) {
    if (loop.signal.aborted) throw loop.signal.reason ?? new Error('aborted');
    const at = loop.clock.now().getTime();
    const scheduled = at >= due;
    if (scheduled) due = at + spec.interval_ms;
    // Whether the container still runs and the check itself, side by side: a ready instance is
    // not held up by the engine's answer (a stopped one still fails at once, whatever the check).
    checks++;
    const [exited, result] = await Promise.all([loop.exited(), loop.probe(spec.timeout_ms)]);
    if (exited !== null) {
      throw new PloyzError(
        'DEPLOY_READINESS_FAILED',
        `${loop.what} stopped before it became ready: ${exited}`,
        {
          details: { checks, last: exited },
        },
      );
    }
    if (result.ok) return { checks };
    last = result.reason;
    if (scheduled && loop.clock.now().getTime() - start >= spec.start_period_ms) failures++;
    if (failures >= spec.retries) {
      throw new PloyzError(
        'DEPLOY_READINESS_FAILED',
        `${loop.what} never became ready: ${spec.kind} check failed ${failures} time(s) in a row after the ${spec.start_period_ms} ms start period (last: ${last}). ` +
          'Check the service logs (docker logs), its readiness settings and the port it listens on.',
        { details: { checks, failures, last } },
      );
    }
    const wait = Math.max(0, Math.min(gap, due - loop.clock.now().getTime()));
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
