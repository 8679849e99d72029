import { describe, expect, it } from 'vitest';
import { jsonAnswer, METRICS_TYPE } from './admin.ts';
import { labelSample, mergeAdmin, type WorkerAnswer } from './worker-admin.ts';

const facts = { version: '1.2.3', startedAt: Date.now(), workers: 2 };

function metrics(text: string) {
  return { status: 200, contentType: METRICS_TYPE, body: text };
}

describe('labelSample', () => {
  it('adds the worker label in front of the others, or as the only one', () => {
    expect(labelSample('a_total{route="x",status="200"} 3', 'worker="1"')).toBe(
      'a_total{worker="1",route="x",status="200"} 3',
    );
    expect(labelSample('a_total 3', 'worker="1"')).toBe('a_total{worker="1"} 3');
    expect(labelSample('a{} 3', 'worker="0"')).toBe('a{worker="0"} 3');
  });
});

describe('mergeAdmin', () => {
  const text = (n: number) =>
    [
      '# HELP r_total Requests.',
      '# TYPE r_total counter',
      `r_total{route="a"} ${n}`,
      '# HELP up_g A gauge.',
      '# TYPE up_g gauge',
      `up_g ${n}`,
      '',
    ].join('\n');

  it('/metrics: each family once, every sample labelled by worker, the primary’s gauges after', () => {
    const answers: WorkerAnswer[] = [
      { slot: 0, pid: 10, restarts: 0, answer: metrics(text(5)) },
      { slot: 1, pid: 11, restarts: 2, answer: metrics(text(7)) },
    ];
    const body = mergeAdmin('/metrics', facts, answers).body;
    expect(body.split('\n').slice(0, 8)).toEqual([
      '# HELP r_total Requests.',
      '# TYPE r_total counter',
      'r_total{worker="0",route="a"} 5',
      'r_total{worker="1",route="a"} 7',
      '# HELP up_g A gauge.',
      '# TYPE up_g gauge',
      'up_g{worker="0"} 5',
      'up_g{worker="1"} 7',
    ]);
    expect(body).toContain('ployz_gateway_worker_restarts_total{worker="1"} 2');
    expect(body).toContain('ployz_gateway_worker_up{worker="0"} 1');
  });

  it('/metrics: a worker that did not answer is down, its samples absent', () => {
    const body = mergeAdmin('/metrics', facts, [
      { slot: 0, pid: 10, restarts: 0, answer: metrics(text(5)) },
      { slot: 1, pid: undefined, restarts: 1, answer: undefined },
    ]).body;
    expect(body).not.toContain('r_total{worker="1"');
    expect(body).toContain('ployz_gateway_worker_up{worker="1"} 0');
  });

  it('/_ployz/health: 200 only when every worker answered fresh; the reason names the others', () => {
    const fresh = jsonAnswer(200, { status: 'ok', reason: null, applied_seq: 4, lag: 0 });
    const stale = jsonAnswer(503, { status: 'stale', reason: 'not loaded yet', applied_seq: 0, lag: null });
    const ok = mergeAdmin('/_ployz/health', facts, [
      { slot: 0, pid: 1, restarts: 0, answer: fresh },
      { slot: 1, pid: 2, restarts: 0, answer: fresh },
    ]);
    expect(ok.status).toBe(200);
    const bad = mergeAdmin('/_ployz/health', facts, [
      { slot: 0, pid: 1, restarts: 0, answer: fresh },
      { slot: 1, pid: 2, restarts: 0, answer: stale },
    ]);
    expect(bad.status).toBe(503);
    expect(JSON.parse(bad.body).reason).toBe('worker 1: not loaded yet');
    const down = mergeAdmin('/_ployz/health', facts, [
      { slot: 0, pid: 1, restarts: 0, answer: fresh },
      { slot: 1, pid: undefined, restarts: 1, answer: undefined },
    ]);
    expect(down.status).toBe(503);
    expect(JSON.parse(down.body).reason).toBe('worker 1: not answering');
  });

  it('/_ployz/status: totals over the workers, and each worker’s own status', () => {
    const one = (inFlight: number) =>
      jsonAnswer(200, { loaded: true, stale: false, in_flight: inFlight, route_count: 3, backend_count: 4 });
    const status = JSON.parse(
      mergeAdmin('/_ployz/status', facts, [
        { slot: 0, pid: 1, restarts: 0, answer: one(2) },
        { slot: 1, pid: 2, restarts: 1, answer: one(5) },
      ]).body,
    );
    expect(status).toMatchObject({
      version: '1.2.3',
      workers: 2,
      workers_answering: 2,
      worker_restarts: 1,
      loaded: true,
      stale: false,
      in_flight: 7,
      route_count: 3,
    });
    expect(status.per_worker.map((w: { worker: number; pid: number }) => [w.worker, w.pid])).toEqual([
      [0, 1],
      [1, 2],
    ]);
  });
});
