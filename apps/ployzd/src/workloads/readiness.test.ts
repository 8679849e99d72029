import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeployReadiness } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import type { Clock } from './clock.ts';
import { httpProbe, type ProbeResult, tcpProbe, waitUntilReady } from './readiness.ts';

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

const spec = (over: Partial<DeployReadiness> = {}): DeployReadiness => ({
  kind: 'http',
  path: '/',
  port: 80,
  interval_ms: 1000,
  timeout_ms: 500,
  retries: 3,
  start_period_ms: 0,
  ...over,
});

/** Fails with `reason` until the clock reaches `readyAt` ms, then succeeds. */
function readyAt(clock: { t: number }, at: number, reason = 'ECONNREFUSED') {
  let calls = 0;
  const probe = async (): Promise<ProbeResult> => {
    calls++;
    return clock.t >= at ? { ok: true } : { ok: false, reason };
  };
  return { probe, calls: () => calls };
}

const alive = async () => null;
const signal = new AbortController().signal;

describe('waitUntilReady', () => {
  it('checks at once and is ready on the first success', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 0);
    expect(await waitUntilReady(spec(), { clock, probe, exited: alive, signal, what: 'x' })).toEqual({
      checks: 1,
      waited_ms: 0,
    });
  });

  it('probes early after a failure: a service listening after 50 ms is ready before the 1 s interval', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 50);
    const r = await waitUntilReady(spec({ interval_ms: 1000 }), {
      clock,
      probe,
      exited: alive,
      signal,
      what: 'x',
    });
    expect(r.waited_ms).toBeGreaterThanOrEqual(50);
    expect(r.waited_ms).toBeLessThan(1000);
  });

  it('early probes never delay the next scheduled check: ready at the interval is ready at the interval', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 1000);
    const r = await waitUntilReady(spec({ interval_ms: 1000 }), {
      clock,
      probe,
      exited: alive,
      signal,
      what: 'x',
    });
    expect(r.waited_ms).toBe(1000);
  });

  it('stops at once when the deploy aborts (a lost lease), with the abort reason', async () => {
    const clock = fakeClock();
    const ac = new AbortController();
    let probes = 0;
    const probe = async (): Promise<ProbeResult> => {
      probes++;
      if (probes === 3) ac.abort(new Error('lease lost'));
      return { ok: false, reason: 'ECONNREFUSED' };
    };
    await expect(
      waitUntilReady(spec(), { clock, probe, exited: alive, signal: ac.signal, what: 'x' }),
    ).rejects.toThrow('lease lost');
    expect(probes).toBe(3);
  });

  it('a slow starter (listening after 20 s) is starting, not failing, with the default start timeout', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 20_000);
    // retries 3 × interval 1 s would have failed it at 2 s before start_timeout existed.
    const r = await waitUntilReady(spec({ retries: 3 }), { clock, probe, exited: alive, signal, what: 'x' });
    expect(r.waited_ms).toBeGreaterThanOrEqual(20_000);
    expect(r.waited_ms).toBeLessThan(21_500);
  });

  it('one that never listens fails at the default 60 s start timeout and says it never answered', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, Number.POSITIVE_INFINITY);
    const err = await waitUntilReady(spec(), { clock, probe, exited: alive, signal, what: 'web' }).catch(
      (e) => e,
    );
    expect(err).toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      details: { last: 'ECONNREFUSED', start_timeout_ms: 60_000, answered: false },
    });
    expect(err.message).toContain('web never answered its http check within the 60 s start timeout');
    expect(clock.t).toBe(60_000);
  });

  it('honours start_timeout_ms and tells an answer that fails the check from no answer', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, Number.POSITIVE_INFINITY, 'HTTP 503');
    const err = await waitUntilReady(spec({ start_timeout_ms: 5_000 }), {
      clock,
      probe,
      exited: alive,
      signal,
      what: 'web',
    }).catch((e) => e);
    expect(err).toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      details: { answered: true, last: 'HTTP 503' },
    });
    expect(err.message).toContain('answered but never passed its http check within the 5 s start timeout');
    expect(clock.t).toBe(5_000);
  });

  it('a start period longer than the start timeout extends the deadline', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 8_000);
    const r = await waitUntilReady(spec({ start_timeout_ms: 2_000, start_period_ms: 10_000 }), {
      clock,
      probe,
      exited: alive,
      signal,
      what: 'x',
    });
    expect(r.waited_ms).toBeGreaterThanOrEqual(8_000);
  });

  it('a passed check is not held up by the engine answering whether the container runs', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, 0);
    const never = () => new Promise<string | null>(() => {});
    expect(await waitUntilReady(spec(), { clock, probe, exited: never, signal, what: 'x' })).toEqual({
      checks: 1,
      waited_ms: 0,
    });
  });

  it('fails at once when the container stops', async () => {
    const clock = fakeClock();
    const { probe } = readyAt(clock, Number.POSITIVE_INFINITY);
    await expect(
      waitUntilReady(spec(), { clock, probe, exited: async () => 'exited with code 1', signal, what: 'web' }),
    ).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      message: expect.stringContaining('exited with code 1'),
    });
    expect(clock.t).toBe(0);
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
