import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { Clock } from './ports.ts';
import { httpProbe, type ProbeResult, tcpProbe, waitUntilReady } from './readiness.ts';
import type { ReadinessSpec } from './spec.ts';

/** A clock that advances only when slept on: the loop is tested without real waiting. */
function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => new Date(c.t),
    sleep: async (ms: number) => {
      c.t += ms;
    },
  };
  return c;
}

const spec = (over: Partial<ReadinessSpec> = {}): ReadinessSpec => ({
  kind: 'http',
  path: '/',
  port: 80,
  interval_ms: 1000,
  timeout_ms: 500,
  retries: 3,
  start_period_ms: 0,
  ...over,
});

function scripted(results: boolean[]) {
  let i = 0;
  return async (): Promise<ProbeResult> =>
    (results[i++] ?? false) ? { ok: true } : { ok: false, reason: 'refused' };
}

const alive = async () => null;
const signal = new AbortController().signal;

describe('waitUntilReady', () => {
  it('checks at once and is ready on the first success', async () => {
    const clock = fakeClock();
    expect(
      await waitUntilReady(spec(), { clock, probe: scripted([true]), exited: alive, signal, what: 'x' }),
    ).toEqual({ checks: 1 });
    expect(clock.t).toBe(0);
  });

  it('probes early after a failure (10, 20, 40 ms …) and is ready without waiting the interval', async () => {
    const clock = fakeClock();
    const r = await waitUntilReady(spec({ interval_ms: 1000 }), {
      clock,
      probe: scripted([false, false, false, true]),
      exited: alive,
      signal,
      what: 'x',
    });
    expect(r.checks).toBe(4);
    expect(clock.t).toBe(70);
  });

  it('gives up after `retries` consecutive failures, one interval apart', async () => {
    const clock = fakeClock();
    await expect(
      waitUntilReady(spec({ retries: 3 }), {
        clock,
        probe: scripted([]),
        exited: alive,
        signal,
        what: 'web',
      }),
    ).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      // Scheduled checks at 0, 1000 and 2000 ms count; the early probes between (10, 30, 70,
      // 150, 310, 630 ms) do not.
      details: { checks: 9, failures: 3, last: 'refused' },
    });
    expect(clock.t).toBe(2000);
  });

  it('does not count failures inside the start period', async () => {
    const clock = fakeClock();
    const r = await waitUntilReady(spec({ retries: 2, start_period_ms: 5000 }), {
      clock,
      probe: scripted([false, false, false, false, false, false, true]),
      exited: alive,
      signal,
      what: 'x',
    });
    expect(r.checks).toBe(7);
  });

  it('fails at once when the container stops', async () => {
    await expect(
      waitUntilReady(spec({ retries: 100 }), {
        clock: fakeClock(),
        probe: scripted([]),
        exited: async () => 'exited with code 1',
        signal,
        what: 'web',
      }),
    ).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      message: expect.stringContaining('exited with code 1'),
    });
  });
});

describe('probes against a real server', () => {
  it('http: 2xx ready, 5xx and refused not; tcp: connect', async () => {
    let status = 503;
    const server = createServer((_req, res) => {
      res.writeHead(status).end('x');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      expect(await httpProbe('127.0.0.1', port, '/healthz')(500)).toEqual({ ok: false, reason: 'HTTP 503' });
      status = 200;
      expect(await httpProbe('127.0.0.1', port, '/healthz')(500)).toEqual({ ok: true });
      expect(await tcpProbe('127.0.0.1', port)(500)).toEqual({ ok: true });
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect((await httpProbe('127.0.0.1', port, '/')(500)).ok).toBe(false);
    expect(await tcpProbe('127.0.0.1', port)(500)).toEqual({ ok: false, reason: 'ECONNREFUSED' });
  });
});
