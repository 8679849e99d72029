/**
 * The admin answers of a multi-worker gateway, merged by its primary (workers.ts) from each
 * worker's own answer (admin.ts): pure functions of the answers, no I/O.
 *
 * - `/metrics`: every worker's families once each, every sample labelled `worker="<slot>"`
 *   (sum by the other labels to aggregate), plus the primary's own worker gauges.
 * - `/_ployz/status`: totals (in-flight, routes of worker 0, stale when any worker is) and
 *   each worker's own status under `workers`.
 * - `/_ployz/health`: 200 only when every worker answered and is fresh.
 */
import { ADMIN_PATHS } from '@ployz/protocol/admin';
import { type AdminAnswer, jsonAnswer, METRICS_TYPE, unknownPath } from './admin.ts';

/** One worker slot as the primary sees it when it asks for an admin answer. */
export interface WorkerAnswer {
  slot: number;
  pid: number | undefined;
  /** Times this slot's process was replaced. */
  restarts: number;
  /** The worker's answer; undefined when it is down, starting, or did not answer in time. */
  answer: AdminAnswer | undefined;
}

export interface PrimaryFacts {
  version: string;
  startedAt: number;
  /** Slots asked for (the `--workers` count). */
  workers: number;
}

export function mergeAdmin(path: string, facts: PrimaryFacts, answers: readonly WorkerAnswer[]): AdminAnswer {
  switch (path) {
    case ADMIN_PATHS.health:
      return mergeHealth(answers);
    case ADMIN_PATHS.status:
      return mergeStatus(facts, answers);
    case ADMIN_PATHS.metrics:
      return { status: 200, contentType: METRICS_TYPE, body: mergeMetrics(facts, answers) };
    default:
      return unknownPath();
  }
}

function parsed(answer: AdminAnswer | undefined): Record<string, unknown> | undefined {
  if (answer === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(answer.body);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function mergeHealth(answers: readonly WorkerAnswer[]): AdminAnswer {
  const problems: string[] = [];
  for (const w of answers) {
    const body = parsed(w.answer);
    if (w.answer === undefined || body === undefined) problems.push(`worker ${w.slot}: not answering`);
    else if (w.answer.status !== 200)
      problems.push(`worker ${w.slot}: ${String(body.reason ?? body.status)}`);
  }
  const first = parsed(answers[0]?.answer);
  return jsonAnswer(problems.length === 0 ? 200 : 503, {
    status: problems.length === 0 ? 'ok' : 'stale',
    reason: problems.length === 0 ? null : problems.join('; '),
    applied_seq: first?.applied_seq ?? null,
    lag: first?.lag ?? null,
    workers: answers.map((w) => ({ worker: w.slot, ...(parsed(w.answer) ?? { status: 'not answering' }) })),
  });
}

function mergeStatus(facts: PrimaryFacts, answers: readonly WorkerAnswer[]): AdminAnswer {
  const bodies = answers.map((w) => parsed(w.answer));
  const live = bodies.filter((b): b is Record<string, unknown> => b !== undefined);
  const sum = (key: string) =>
    live.reduce((n, b) => n + (typeof b[key] === 'number' ? (b[key] as number) : 0), 0);
  const first = live[0];
  const memory = process.memoryUsage();
  return jsonAnswer(200, {
    version: facts.version,
    uptime_s: Math.round((Date.now() - facts.startedAt) / 1000),
    workers: facts.workers,
    workers_answering: live.length,
    worker_restarts: answers.reduce((n, w) => n + w.restarts, 0),
    loaded: live.length === answers.length && live.every((b) => b.loaded === true),
    stale: live.length < answers.length || live.some((b) => b.stale !== false),
    in_flight: sum('in_flight'),
    route_count: first?.route_count ?? 0,
    backend_count: first?.backend_count ?? 0,
    primary: { pid: process.pid, memory_mb: { rss: Math.round(memory.rss / 1048576) } },
    per_worker: answers.map((w, i) => ({
      worker: w.slot,
      pid: w.pid ?? null,
      restarts: w.restarts,
      ...(bodies[i] ?? { answering: false }),
    })),
  });
}

interface Family {
  /** `# HELP` and `# TYPE` lines. */
  meta: string[];
  samples: string[];
}

/** `name{a="b"} 1` → `name{worker="0",a="b"} 1`; `name 1` → `name{worker="0"} 1`. */
export function labelSample(line: string, label: string): string {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  if (brace !== -1 && (space === -1 || brace < space)) {
    const rest = line.slice(brace + 1);
    return `${line.slice(0, brace)}{${label}${rest.startsWith('}') ? '' : ','}${rest}`;
  }
  if (space === -1) return line;
  return `${line.slice(0, space)}{${label}}${line.slice(space)}`;
}

function mergeMetrics(facts: PrimaryFacts, answers: readonly WorkerAnswer[]): string {
  const families = new Map<string, Family>();
  for (const w of answers) {
    if (w.answer === undefined || w.answer.status !== 200) continue;
    const label = `worker="${w.slot}"`;
    let current: Family | undefined;
    for (const line of w.answer.body.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('# ')) {
        const name = line.split(' ')[2] ?? '';
        current = families.get(name);
        if (current === undefined) {
          current = { meta: [], samples: [] };
          families.set(name, current);
        }
        if (current.meta.length < 2 && !current.meta.includes(line)) current.meta.push(line);
        continue;
      }
      current?.samples.push(labelSample(line, label));
    }
  }
  const out: string[] = [];
  for (const family of families.values()) out.push(...family.meta, ...family.samples);
  out.push(
    '# HELP ployz_gateway_workers Worker processes asked for (--workers).',
    '# TYPE ployz_gateway_workers gauge',
    `ployz_gateway_workers ${facts.workers}`,
    '# HELP ployz_gateway_worker_up 1 when the worker answered the primary.',
    '# TYPE ployz_gateway_worker_up gauge',
    ...answers.map((w) => `ployz_gateway_worker_up{worker="${w.slot}"} ${w.answer === undefined ? 0 : 1}`),
    '# HELP ployz_gateway_worker_restarts_total Times a worker process died and was replaced.',
    '# TYPE ployz_gateway_worker_restarts_total counter',
    ...answers.map((w) => `ployz_gateway_worker_restarts_total{worker="${w.slot}"} ${w.restarts}`),
  );
  return `${out.join('\n')}\n`;
}
