/**
 * A multi-worker gateway (`--workers N`, docs/adr/0012-gateway-workers.md): the primary forks N
 * workers, each a full gateway with its own follower, binding the serving ports with
 * SO_REUSEPORT (the kernel spreads new connections over their listening sockets). The primary
 * serves no traffic: it holds the admin listener (answers merged from the workers over IPC,
 * worker-admin.ts), replaces a worker that dies (the others and their connections are not
 * touched), and relays SIGTERM/SIGINT so every worker drains.
 */
import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import { type AdminListener, listenAdmin } from '@ployz/protocol/admin';
import { type AdminAnswer, adminPath, METHOD_REFUSED, sendAnswer } from './admin.ts';
import type { Gateway } from './gateway.ts';
import { primaryLog } from './primary-log.ts';
import { mergeAdmin, type WorkerAnswer } from './worker-admin.ts';

/** The env a worker reads its slot from (set by the primary; not a user setting). */
export const WORKER_SLOT_ENV = 'PLOYZ_GATEWAY_WORKER_SLOT';
/** Set on a replacement worker: bind only after the first table (gateway.ts loadBeforeListenMs). */
export const WORKER_REPLACEMENT_ENV = 'PLOYZ_GATEWAY_WORKER_REPLACEMENT';
/** The primary's plan, set by `becomePrimary` on the process it re-executes (not a user setting). */
export const PRIMARY_PLAN_ENV = 'PLOYZ_GATEWAY_PRIMARY_PLAN';

/** How long a replacement waits for its first table before binding anyway. */
export const REPLACEMENT_LOAD_MS = 10_000;
/** How long the primary waits for a worker's admin answer. */
const ADMIN_ASK_MS = 1000;
/** A worker that dies sooner than this after its start counts as a crash loop: back off. */
const CRASH_LOOP_MS = 5000;
const MAX_BACKOFF_MS = 5000;

type AdminAsk = { kind: 'ployz-gw-admin-ask'; id: number; path: string };
type AdminReply = { kind: 'ployz-gw-admin-reply'; id: number; answer: AdminAnswer };
type Ready = { kind: 'ployz-gw-ready'; httpPort: number; httpsPort: number | null };

function isAsk(m: unknown): m is AdminAsk {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'ployz-gw-admin-ask';
}
function isReply(m: unknown): m is AdminReply {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'ployz-gw-admin-reply';
}
function isReady(m: unknown): m is Ready {
  return typeof m === 'object' && m !== null && (m as { kind?: unknown }).kind === 'ployz-gw-ready';
}

/** This process's worker slot, or null when it is no gateway worker. */
export function workerSlot(): number | null {
  if (!cluster.isWorker) return null;
  const slot = Number(process.env[WORKER_SLOT_ENV]);
  return Number.isInteger(slot) && slot >= 0 ? slot : null;
}

export function isReplacementWorker(): boolean {
  return process.env[WORKER_REPLACEMENT_ENV] === '1';
}

/** Worker side: answers the primary's admin questions and says when it serves. */
export function serveWorker(gateway: Gateway): () => void {
  const onMessage = (message: unknown) => {
    if (!isAsk(message)) return;
    let answer: AdminAnswer;
    try {
      answer = gateway.admin(message.path);
    } catch (error) {
      answer = { status: 500, contentType: 'text/plain', body: `${(error as Error).message}\n` };
    }
    const reply: AdminReply = { kind: 'ployz-gw-admin-reply', id: message.id, answer };
    if (process.connected) process.send?.(reply);
  };
  process.on('message', onMessage);
  const ready: Ready = { kind: 'ployz-gw-ready', httpPort: gateway.httpPort, httpsPort: gateway.httpsPort };
  process.send?.(ready);
  return () => process.off('message', onMessage);
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  startedAt: number;
  restarts: number;
  backoffMs: number;
  timer: NodeJS.Timeout | undefined;
}

/** What the primary needs of the parsed settings (launch.ts), and nothing else. */
export interface PrimaryPlan {
  workers: number;
  version: string;
  logLevel: string;
  adminHost: string;
  adminPort: number;
  /** Replace-beside: the admin port while the admin port is taken (null: not beside). */
  adminAltPort: number | null;
}

/**
 * The process that parsed the settings becomes the primary: it re-executes itself in place (same
 * pid and command line; `process.execve`) with `plan` in the env, so the primary's heap never
 * holds the schema, its validator or the proxy stack it loaded to parse them (main.ts). Without
 * execve it supervises from here. Resolves (without execve) with the primary's exit code.
 */
export function becomePrimary(plan: PrimaryPlan): Promise<number> {
  if (typeof process.execve === 'function') {
    process.execve(process.execPath, [process.argv0, ...process.execArgv, ...process.argv.slice(1)], {
      ...process.env,
      [PRIMARY_PLAN_ENV]: JSON.stringify(plan),
    });
  }
  return runPrimary(plan);
}

/** The plan `becomePrimary` left in `env` (taken out: the workers must not inherit it). */
export function takePrimaryPlan(env: NodeJS.ProcessEnv): PrimaryPlan | undefined {
  const text = env[PRIMARY_PLAN_ENV];
  if (text === undefined) return undefined;
  delete env[PRIMARY_PLAN_ENV];
  const plan = JSON.parse(text) as Partial<PrimaryPlan> | null;
  if (
    typeof plan?.workers !== 'number' ||
    typeof plan.version !== 'string' ||
    typeof plan.logLevel !== 'string' ||
    typeof plan.adminHost !== 'string' ||
    typeof plan.adminPort !== 'number' ||
    (plan.adminAltPort !== null && typeof plan.adminAltPort !== 'number')
  )
    throw new Error(`${PRIMARY_PLAN_ENV} is not a primary plan: ${text}`);
  return plan as PrimaryPlan;
}

/**
 * Runs the primary until SIGTERM/SIGINT and every worker's exit; returns the exit code (0 when
 * every worker drained and exited cleanly).
 */
export async function runPrimary(plan: PrimaryPlan): Promise<number> {
  const { workers: count, version } = plan;
  const log = primaryLog(plan.logLevel, 'ployz-gateway');
  const startedAt = Date.now();
  let stopping = false;
  let exitCode = 0;
  let nextAsk = 0;
  const waiting = new Map<number, (answer: AdminAnswer) => void>();
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({
    index,
    worker: undefined,
    startedAt: 0,
    restarts: 0,
    backoffMs: 100,
    timer: undefined,
  }));
  let allExited: () => void = () => undefined;
  const exited = new Promise<void>((resolve) => {
    allExited = resolve;
  });

  const fork = (slot: Slot, replacement: boolean) => {
    slot.timer = undefined;
    slot.startedAt = Date.now();
    const worker = cluster.fork({
      ...process.env,
      [WORKER_SLOT_ENV]: String(slot.index),
      [WORKER_REPLACEMENT_ENV]: replacement ? '1' : '',
    });
    slot.worker = worker;
    worker.on('message', (message: unknown) => {
      if (isReply(message)) {
        waiting.get(message.id)?.(message.answer);
      } else if (isReady(message)) {
        log.info({ slot: slot.index, workerPid: worker.process.pid, replacement }, 'gateway worker serving');
      }
    });
    worker.on('exit', (code, signal) => {
      if (slot.worker === worker) slot.worker = undefined;
      if (stopping) {
        if (code !== 0) exitCode = 1;
        if (slots.every((s) => s.worker === undefined)) allExited();
        return;
      }
      const quick = Date.now() - slot.startedAt < CRASH_LOOP_MS;
      slot.backoffMs = quick ? Math.min(MAX_BACKOFF_MS, slot.backoffMs * 2) : 100;
      slot.restarts += 1;
      log.error(
        { slot: slot.index, workerPid: worker.process.pid, code, signal, restartInMs: slot.backoffMs },
        'gateway worker died; replacing it (the other workers keep serving)',
      );
      slot.timer = setTimeout(() => fork(slot, true), slot.backoffMs);
    });
  };
  for (const slot of slots) fork(slot, false);
  log.info({ workers: count }, 'gateway primary started workers');

  const ask = (slot: Slot, path: string): Promise<AdminAnswer | undefined> => {
    const worker = slot.worker;
    if (worker === undefined || !worker.isConnected()) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const id = nextAsk++;
      const done = (answer: AdminAnswer | undefined) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(answer);
      };
      const timer = setTimeout(() => done(undefined), ADMIN_ASK_MS);
      waiting.set(id, done);
      const message: AdminAsk = { kind: 'ployz-gw-admin-ask', id, path };
      try {
        worker.send(message, (error: Error | null) => {
          if (error) done(undefined);
        });
      } catch {
        done(undefined);
      }
    });
  };

  const answerAdmin = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = adminPath(req);
    if (path === null) {
      sendAnswer(res, METHOD_REFUSED);
      return;
    }
    void Promise.all(slots.map((slot) => ask(slot, path))).then((answers) => {
      const merged: WorkerAnswer[] = slots.map((slot, i) => ({
        slot: slot.index,
        pid: slot.worker?.process.pid,
        restarts: slot.restarts,
        answer: answers[i],
      }));
      sendAnswer(res, mergeAdmin(path, { version, startedAt, workers: count }, merged));
    });
  };
  let admin: AdminListener;
  try {
    // Replace-beside: while the instance this one replaces holds the admin port, answer on the
    // alternate port (docs/adr/0014-replace-beside.md).
    admin = await listenAdmin(() => http.createServer(answerAdmin), {
      host: plan.adminHost,
      port: plan.adminPort,
      altPort: plan.adminAltPort,
      onMoved: (adminPort) => log.info({ adminPort }, 'gateway admin moved to its port'),
    });
  } catch (error) {
    log.fatal({ err: error }, 'cannot bind the admin listener; stopping the workers');
    stopping = true;
    for (const slot of slots) slot.worker?.process.kill('SIGTERM');
    await exited;
    return 1;
  }
  log.info({ adminPort: admin.port, workers: count }, 'gateway admin listening');

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down: draining every worker');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  stopping = true;
  for (const slot of slots) {
    if (slot.timer !== undefined) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.worker?.process.kill('SIGTERM');
  }
  if (slots.some((s) => s.worker !== undefined)) await exited;
  await admin.close();
  log.info({ exitCode }, 'gateway stopped');
  return exitCode;
}
