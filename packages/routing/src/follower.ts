import type { RoutingEvent, RoutingFeed } from '@ployz/types';
import { ProjectionState, type RoutingState } from './state.ts';

/** How fresh a follower's view is. Edge apps serve it on status endpoints and metrics. */
export interface Freshness {
  /** A view has been built at least once. */
  readonly loaded: boolean;
  /** Stream sequence reflected in the view being served. */
  readonly appliedSeq: number;
  /** Last stream sequence known (from events or `lastSeq()`); null before the first answer. */
  readonly streamSeq: number | null;
  /** `streamSeq - appliedSeq`, or null when the stream position is unknown. */
  readonly lag: number | null;
  /** When the served view was last rebuilt successfully (epoch ms). */
  readonly lastSuccessAt: number | null;
  /** Duration of the last successful rebuild. */
  readonly lastRebuildMs: number | null;
  readonly rebuilds: number;
  /** Rebuilds that recomputed everything (snapshots, fallbacks); the rest were incremental. */
  readonly fullRebuilds: number;
  readonly rebuildFailures: number;
  /** Snapshots taken (1 at start, +1 after every feed failure). */
  readonly resyncs: number;
  /** True when the view may not reflect the store: see `reason`. */
  readonly stale: boolean;
  /** Every current cause of staleness, `; `-joined, or null when fresh. */
  readonly reason: string | null;
}

/**
 * A projection that can follow events without recomputing everything. `update()` must return
 * what `full()` would for the same state; when it throws, the follower falls back to `full()`.
 */
export interface IncrementalProjection<T> {
  /** Builds the view from scratch (after a snapshot, and as the fallback). */
  full(state: RoutingState): T;
  /** Builds the next view after `events` (in order) were applied to `state`. */
  update(state: RoutingState, events: readonly RoutingEvent[]): T;
}

export interface FollowerOptions<T> {
  /** Pure projection from records to the view served (route table, DNS zone…). May throw. */
  project(state: RoutingState): T;
  /** Event-by-event projection; when given it is used instead of `project`. */
  incremental?: IncrementalProjection<T>;
  /** How often to ask the store for its last sequence (lag, reachability). Default 1000 ms. */
  pollIntervalMs?: number;
  /** Retry delay after a feed failure, doubling up to `maxRetryDelayMs`. Defaults 100 / 2000 ms. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** The view counts as stale when it stays behind the stream longer than this. Default 5000 ms. */
  maxLagMs?: number;
  /** Called on every feed or rebuild failure (the follower itself never logs). */
  onError?(error: unknown, context: 'snapshot' | 'follow' | 'rebuild' | 'last_seq'): void;
  /** Clock, for tests. */
  now?(): number;
}

/** Keeps the last good view of a projection over a RoutingFeed and reports its freshness. */
export interface Follower<T> {
  /** The view being served, or undefined before the first successful build. */
  current(): T | undefined;
  freshness(): Freshness;
  /** Starts following (idempotent). */
  start(): void;
  /** Stops following; the last view stays readable. */
  stop(): Promise<void>;
  /** Resolves once the served view reflects `seq` (rejects after `timeoutMs`). */
  waitForSeq(seq: number, timeoutMs?: number): Promise<void>;
  /** Called after every successful swap. Returns an unsubscribe function. */
  onUpdate(listener: (view: T, freshness: Freshness) => void): () => void;
  [Symbol.asyncDispose](): Promise<void>;
}

type Condition = 'feed' | 'store' | 'rebuild';

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

class RoutingFollower<T> implements Follower<T> {
  readonly #feed: RoutingFeed;
  readonly #options: FollowerOptions<T>;
  readonly #now: () => number;
  readonly #abort = new AbortController();
  readonly #conditions = new Map<Condition, string>();
  readonly #listeners = new Set<(view: T, freshness: Freshness) => void>();
  readonly #waiters = new Set<{ seq: number; resolve: () => void }>();
  #state: ProjectionState | undefined;
  #view: T | undefined;
  #appliedSeq = 0;
  #streamSeq: number | null = null;
  #behindSince: number | null = null;
  #lastSuccessAt: number | null = null;
  #lastRebuildMs: number | null = null;
  #rebuilds = 0;
  #fullRebuilds = 0;
  #rebuildFailures = 0;
  /** Events applied to the state since the last successful rebuild. */
  #pending: RoutingEvent[] = [];
  #needFull = true;
  #resyncs = 0;
  #rebuildScheduled = false;
  #running: Promise<void> | undefined;
  #poll: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(feed: RoutingFeed, options: FollowerOptions<T>) {
    this.#feed = feed;
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  current(): T | undefined {
    return this.#view;
  }

  freshness(): Freshness {
    const now = this.#now();
    const lag = this.#streamSeq === null ? null : Math.max(0, this.#streamSeq - this.#appliedSeq);
    const reasons: string[] = [];
    if (this.#view === undefined) reasons.push('no routing snapshot loaded yet');
    for (const message of this.#conditions.values()) reasons.push(message);
    const maxLag = this.#options.maxLagMs ?? 5000;
    if (lag !== null && lag > 0 && this.#behindSince !== null && now - this.#behindSince > maxLag) {
      reasons.push(`behind the stream by ${lag} events for ${now - this.#behindSince} ms`);
    }
    return {
      loaded: this.#view !== undefined,
      appliedSeq: this.#appliedSeq,
      streamSeq: this.#streamSeq,
      lag,
      lastSuccessAt: this.#lastSuccessAt,
      lastRebuildMs: this.#lastRebuildMs,
      rebuilds: this.#rebuilds,
      fullRebuilds: this.#fullRebuilds,
      rebuildFailures: this.#rebuildFailures,
      resyncs: this.#resyncs,
      stale: reasons.length > 0,
      reason: reasons.length > 0 ? reasons.join('; ') : null,
    };
  }

  start(): void {
    if (this.#running !== undefined || this.#abort.signal.aborted) return;
    this.#running = this.#run();
    const interval = this.#options.pollIntervalMs ?? 1000;
    this.#poll = setInterval(() => void this.#pollLastSeq(), interval);
    this.#poll.unref();
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#poll !== undefined) clearInterval(this.#poll);
    await this.#running;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }

  onUpdate(listener: (view: T, freshness: Freshness) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  waitForSeq(seq: number, timeoutMs = 10_000): Promise<void> {
    if (this.#view !== undefined && this.#appliedSeq >= seq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`view did not reach seq ${seq} within ${timeoutMs} ms (at ${this.#appliedSeq})`));
      }, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    const initialDelay = this.#options.retryDelayMs ?? 100;
    const maxDelay = this.#options.maxRetryDelayMs ?? 2000;
    let delay = initialDelay;
    while (!signal.aborted) {
      let context: 'snapshot' | 'follow' = 'snapshot';
      try {
        const snapshot = await this.#feed.snapshot();
        if (signal.aborted) break;
        const state = ProjectionState.fromSnapshot(snapshot);
        this.#state = state;
        this.#pending = [];
        this.#needFull = true;
        this.#resyncs += 1;
        this.#noteStreamSeq(state.seq);
        // The feed is healthy again before the view is published, so listeners see it fresh.
        this.#conditions.delete('feed');
        this.#rebuild();
        delay = initialDelay;
        context = 'follow';
        for await (const { seq, event } of this.#feed.follow(state.seq, signal)) {
          if (seq <= state.seq) continue;
          state.apply(event, seq);
          if (!this.#needFull) this.#pending.push(event);
          this.#noteStreamSeq(seq);
          this.#conditions.delete('feed');
          this.#conditions.delete('store');
          this.#scheduleRebuild();
        }
        if (signal.aborted) break;
        this.#conditions.set('feed', 'routing event feed ended; taking a new snapshot');
      } catch (error) {
        if (signal.aborted) break;
        this.#conditions.set('feed', `routing feed failed (${context}): ${messageOf(error)}`);
        this.#options.onError?.(error, context);
      }
      await sleep(delay, signal);
      delay = Math.min(delay * 2, maxDelay);
    }
  }

  #scheduleRebuild(): void {
    if (this.#rebuildScheduled) return;
    this.#rebuildScheduled = true;
    // Coalesce a burst of events delivered together into one rebuild.
    setImmediate(() => {
      this.#rebuildScheduled = false;
      this.#rebuild();
    });
  }

  #rebuild(): void {
    const state = this.#state;
    if (state === undefined) return;
    const started = performance.now();
    let view: T;
    try {
      view = this.#project(state);
    } catch (error) {
      this.#needFull = true;
      this.#pending = [];
      this.#rebuildFailures += 1;
      this.#conditions.set('rebuild', `projection rebuild failed at seq ${state.seq}: ${messageOf(error)}`);
      this.#options.onError?.(error, 'rebuild');
      return;
    }
    this.#view = view;
    this.#appliedSeq = state.seq;
    this.#lastRebuildMs = performance.now() - started;
    this.#lastSuccessAt = this.#now();
    this.#rebuilds += 1;
    this.#conditions.delete('rebuild');
    this.#updateBehind();
    for (const waiter of this.#waiters) {
      if (waiter.seq <= state.seq) {
        this.#waiters.delete(waiter);
        waiter.resolve();
      }
    }
    if (this.#listeners.size > 0) {
      const freshness = this.freshness();
      for (const listener of this.#listeners) listener(view, freshness);
    }
  }

  #project(state: ProjectionState): T {
    const incremental = this.#options.incremental;
    if (incremental === undefined) {
      this.#fullRebuilds += 1;
      return this.#options.project(state);
    }
    const events = this.#pending;
    this.#pending = [];
    if (!this.#needFull) {
      try {
        return incremental.update(state, events);
      } catch (error) {
        // The incremental view may be half-updated: rebuild it whole (and say so).
        this.#options.onError?.(error, 'rebuild');
      }
    }
    this.#needFull = true;
    const view = incremental.full(state);
    this.#needFull = false;
    this.#fullRebuilds += 1;
    return view;
  }

  #noteStreamSeq(seq: number): void {
    if (this.#streamSeq === null || seq > this.#streamSeq) this.#streamSeq = seq;
    this.#updateBehind();
  }

  #updateBehind(): void {
    const behind = this.#streamSeq !== null && this.#streamSeq > this.#appliedSeq;
    if (!behind) this.#behindSince = null;
    else if (this.#behindSince === null) this.#behindSince = this.#now();
  }

  async #pollLastSeq(): Promise<void> {
    if (this.#polling || this.#abort.signal.aborted) return;
    this.#polling = true;
    try {
      const seq = await this.#feed.lastSeq();
      if (seq === null) {
        this.#conditions.set('store', 'the store is unreachable; serving the last good view');
      } else {
        this.#conditions.delete('store');
        this.#noteStreamSeq(seq);
      }
    } catch (error) {
      this.#conditions.set(
        'store',
        `the store is unreachable (${messageOf(error)}); serving the last good view`,
      );
      this.#options.onError?.(error, 'last_seq');
    } finally {
      this.#polling = false;
    }
  }
}

/**
 * Follows a RoutingFeed: snapshot, then ordered events, rebuilding the view off to the side and
 * swapping it in atomically. A failed rebuild keeps the last good view and marks it stale; a feed
 * failure retries with backoff from a fresh snapshot. Generic over the projection so the gateway
 * (route table) and DNS (records) share it.
 */
export function createFollower<T>(feed: RoutingFeed, options: FollowerOptions<T>): Follower<T> {
  return new RoutingFollower(feed, options);
}
