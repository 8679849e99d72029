/**
 * ployzd's own metrics (docs/operations.md "ployzd's metrics"): deploys by outcome and the time of
 * each of the nine apply steps (read from the deploy event stream, not from the engine), the data
 * plane's reconcile outcome per component, RPC latency per command on both sides (the
 * `RPC_TIMING_CHANNEL` of @ployz/protocol), store errors by code (`STORE_ERROR_CHANNEL` of
 * @ployz/store), and the process: uptime, memory, CPU, event-loop lag.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type ELDHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { type DeployEvent, RPC_TIMING_CHANNEL, type RpcTiming, STEPS } from '@ployz/protocol';
import { STORE_ERROR_CHANNEL, type StoreErrorReport } from '@ployz/store';
import { isPloyzError } from '@ployz/types';
import type { ComponentOutcome } from '../dataplane/executor.ts';
import { Registry, type Sample } from './registry.ts';

/** Which route a deploy came through. */
export type DeployKind = 'apply' | 'rollback' | 'namespace_remove' | 'branch' | 'promote';

/**
 * How a deploy ended: committed, noop (nothing changed), failed (before any commit: nothing live
 * changed), failed_after_checkpoint (a commit stays live), refused (it ended before its status
 * record: lease held, engine not ready…), unknown (no result event: a bug).
 */
export type DeployOutcome =
  | 'committed'
  | 'noop'
  | 'failed'
  | 'failed_after_checkpoint'
  | 'refused'
  | 'unknown';

/** Seconds: a step takes milliseconds (preview) to minutes (readiness of many candidates). */
const DEPLOY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** Seconds: an RPC on one machine takes a millisecond; a start or a readiness wait, seconds. */
/** How often the event-loop monitor's timer fires (ms); its samples include this interval. */
const LOOP_RESOLUTION_MS = 10;
const RPC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

type Emit = (event: DeployEvent) => void;

export class DaemonMetrics {
  readonly registry = new Registry();
  readonly #now: () => number;
  readonly #loop: ELDHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  #deploysInFlight = 0;
  #observing = false;

  readonly deploys = this.registry.counter(
    'ployzd_deploys_total',
    'Deploys by route (apply, rollback, namespace_remove, branch, promote) and how they ended (committed, noop, failed, failed_after_checkpoint, refused).',
    ['kind', 'outcome'],
  );
  readonly deployErrors = this.registry.counter(
    'ployzd_deploy_errors_total',
    'Deploys that ended in an error, by its code (DEPLOY_LOCK_HELD, DEPLOY_READINESS_FAILED…).',
    ['kind', 'code'],
  );
  readonly deployDuration = this.registry.histogram(
    'ployzd_deploy_duration_seconds',
    'Time from a deploy request to its end.',
    ['kind', 'outcome'],
    DEPLOY_BUCKETS,
  );
  readonly stepDuration = this.registry.histogram(
    'ployzd_deploy_step_duration_seconds',
    'Time of each apply step from started to done (phases and checkpoints: once per phase).',
    ['step', 'name'],
    DEPLOY_BUCKETS,
  );
  readonly stepFailures = this.registry.counter(
    'ployzd_deploy_step_failures_total',
    'The step a deploy was in when it failed.',
    ['step', 'name'],
  );
  readonly reconcile = this.registry.counter(
    'ployzd_dataplane_reconcile_total',
    'Data-plane components by the outcome of each reconcile pass (adopted, created, recreated, collision, blocked, failed).',
    ['component', 'outcome'],
  );
  readonly rpcDuration = this.registry.histogram(
    'ployzd_rpc_duration_seconds',
    'Machine RPC latency per command: client from send to reply, server from request to answer.',
    ['side', 'command'],
    RPC_BUCKETS,
  );
  readonly rpcCalls = this.registry.counter(
    'ployzd_rpc_calls_total',
    'Machine RPCs per side and command, by result (ok, or the error code).',
    ['side', 'command', 'result'],
  );
  readonly storeErrors = this.registry.counter(
    'ployzd_store_errors_total',
    'Store errors by code (STORE_UNAVAILABLE, STORE_CONFLICT: a lost compare-and-set, also one a retry recovered from; STORE_CORRUPT).',
    ['code'],
  );

  constructor(version: string, now: () => number = () => performance.now()) {
    this.#now = now;
    const r = this.registry;
    r.gauge('ployzd_deploys_in_flight', 'Deploys running now.', () => this.#deploysInFlight);
    r.gauge('ployzd_info', 'The running ployzd (value 1).', () => [{ labels: { version }, value: 1 }]);
    r.gauge('ployzd_uptime_seconds', 'Seconds since ployzd started.', () => process.uptime());
    r.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch.', () =>
      Math.round(Date.now() / 1000 - process.uptime()),
    );
    r.gauge('process_resident_memory_bytes', 'Resident memory.', () => process.memoryUsage.rss());
    r.gauge('nodejs_heap_used_bytes', 'V8 heap in use.', () => process.memoryUsage().heapUsed);
    r.counterOf('process_cpu_seconds_total', 'User and system CPU time.', () => {
      const cpu = process.cpuUsage();
      return (cpu.user + cpu.system) / 1e6;
    });
    r.summary(
      'ployzd_event_loop_lag_seconds',
      'Event-loop delay since start: how late a 10 ms timer fired.',
      () => this.#loopSamples(),
    );
    r.gauge('ployzd_event_loop_lag_max_seconds', 'Largest event-loop delay since start.', () =>
      this.#loop.count === 0 ? 0 : lagSeconds(this.#loop.max),
    );
  }

  /** Starts observing RPCs, store errors and the event loop (until `stop`). */
  start(): void {
    if (this.#observing) return;
    this.#observing = true;
    subscribe(RPC_TIMING_CHANNEL, this.#onRpc);
    subscribe(STORE_ERROR_CHANNEL, this.#onStoreError);
    this.#loop.enable();
  }

  stop(): void {
    if (!this.#observing) return;
    this.#observing = false;
    unsubscribe(RPC_TIMING_CHANNEL, this.#onRpc);
    unsubscribe(STORE_ERROR_CHANNEL, this.#onStoreError);
    this.#loop.disable();
  }

  render(): string {
    return this.registry.render();
  }

  /** One component's outcome of a reconcile pass. */
  reconciled(component: string, outcome: ComponentOutcome): void {
    this.reconcile.inc({ component, outcome });
  }

  /**
   * Runs one deploy with `emit` watched on its way to the client: step durations from each
   * `started` to its `done`, the outcome from the `result` or `error` event (or, without one, the
   * error the deploy was refused with).
   */
  async deploy<T>(kind: DeployKind, emit: Emit, run: (emit: Emit) => Promise<T>): Promise<T> {
    const began = this.#now();
    const open = new Map<string, { step: number; at: number }>();
    let outcome: DeployOutcome = 'unknown';
    let code: string | null = null;
    const watched: Emit = (event) => {
      this.#watch(event, open, (o, c) => {
        outcome = o;
        code = c;
      });
      emit(event);
    };
    this.#deploysInFlight += 1;
    try {
      return await run(watched);
    } catch (error) {
      if (outcome === 'unknown') {
        outcome = 'refused';
        code = isPloyzError(error) ? error.code : 'INTERNAL';
      }
      throw error;
    } finally {
      this.#deploysInFlight -= 1;
      this.deploys.inc({ kind, outcome });
      if (code !== null) this.deployErrors.inc({ kind, code });
      this.deployDuration.observe({ kind, outcome }, (this.#now() - began) / 1000);
    }
  }

  #watch(
    event: DeployEvent,
    open: Map<string, { step: number; at: number }>,
    ended: (outcome: DeployOutcome, code: string | null) => void,
  ): void {
    switch (event.type) {
      case 'step': {
        const key = `${event.step}/${event.phase ?? ''}`;
        if (event.state === 'started') {
          open.set(key, { step: event.step, at: this.#now() });
        } else if (event.state === 'done') {
          const started = open.get(key);
          open.delete(key);
          if (started !== undefined)
            this.stepDuration.observe(stepLabels(event.step), (this.#now() - started.at) / 1000);
        }
        return;
      }
      case 'result': {
        const state = event.status?.state;
        ended(
          event.noop ? 'noop' : state === 'committed' || state === undefined ? 'committed' : 'unknown',
          null,
        );
        return;
      }
      case 'error': {
        ended(
          event.state === 'FailedAfterCheckpoint' ? 'failed_after_checkpoint' : 'failed',
          event.error.code,
        );
        for (const { step } of open.values()) this.stepFailures.inc(stepLabels(step));
        open.clear();
        return;
      }
      case 'plan':
      case 'deploy':
      case 'instance':
      case 'machine':
      case 'commit':
      case 'volume':
      case 'image':
      case 'warning':
      case 'paused':
        return;
      default: {
        // A new event type is a compile error here; at run time it is only not counted.
        const never: never = event;
        void never;
        return;
      }
    }
  }

  readonly #onRpc = (message: unknown): void => {
    const t = message as RpcTiming;
    this.rpcDuration.observe({ side: t.side, command: t.command }, t.seconds);
    this.rpcCalls.inc({ side: t.side, command: t.command, result: t.code ?? 'ok' });
  };

  readonly #onStoreError = (message: unknown): void => {
    this.storeErrors.inc({ code: (message as StoreErrorReport).code });
  };

  #loopSamples(): Sample[] {
    const h = this.#loop;
    return [
      ...[0.5, 0.9, 0.99].map((q) => ({
        labels: { quantile: String(q) },
        value: h.count === 0 ? 0 : lagSeconds(h.percentile(q * 100)),
      })),
      { suffix: '_sum', value: h.count === 0 ? 0 : lagSeconds(h.mean) * h.count },
      { suffix: '_count', value: h.count },
    ];
  }
}

/** A monitor sample (ns between two timer firings) as lag: seconds beyond the interval. */
function lagSeconds(ns: number): number {
  return Number.isFinite(ns) ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) / 1000 : 0;
}

function stepLabels(step: number): { step: string; name: string } {
  return { step: String(step), name: STEPS.find((s) => s.step === step)?.name ?? 'unknown' };
}
