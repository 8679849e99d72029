/**
 * The lean upstream client's pool for one backend: keep-alive connections (connection.ts) kept
 * in a LIFO idle list, at most `connections` open, one request at a time on each; further
 * requests queue in order. Silence (an idle keep-alive, or an upstream that does not answer) is
 * measured by one sweep over the pool. Only requests without a body come here; bodies go through
 * undici (docs/adr/0007-gateway-proxy-core.md).
 */
import {
  Connection,
  type ConnectionOptions,
  type ConnectionOwner,
  Exchange,
  type Pending,
  UpstreamError,
  type UpstreamExchange,
  type UpstreamHandler,
} from './connection.ts';

/** Upper bounds (seconds) of the pool-wait histogram's buckets. */
export const WAIT_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5];

/** What a pool counts about its queue (rendered by metrics.ts, per backend). */
export interface PoolCounters {
  /** Requests sent through the pool. */
  requests: number;
  /** Of those, requests that waited for a connection (every connection busy, the cap reached). */
  waits: number;
  /** Seconds those requests spent waiting, in all, and by WAIT_BUCKETS (not cumulative). */
  waitSeconds: number;
  readonly waitBuckets: Float64Array;
}

interface Queued {
  exchange: Exchange;
  pending: Pending;
  /** performance.now() when it joined the queue. */
  since: number;
}

export interface UpstreamPoolOptions extends ConnectionOptions {
  /** Most open connections; further requests wait for a free one. */
  connections: number;
  /** Upstream silent longer than this while a request is outstanding → UPSTREAM_TIMEOUT. */
  timeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveMs: number;
}

/** Keep-alive connections to one backend. */
export class UpstreamPool implements ConnectionOwner {
  readonly options: UpstreamPoolOptions;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  /** Requests waiting for a connection, oldest first from `#head` (a deque without shifting). */
  #queue: Queued[] = [];
  #head = 0;
  readonly counters: PoolCounters = {
    requests: 0,
    waits: 0,
    waitSeconds: 0,
    waitBuckets: new Float64Array(WAIT_BUCKETS.length),
  };
  #closed = false;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #sweepMs: number;

  constructor(options: UpstreamPoolOptions) {
    this.options = options;
    // Silence is measured by a sweep over the pool rather than a timer per socket (a socket
    // timeout is re-armed on every read and write): a timeout fires within one sweep after it is due.
    this.#sweepMs = Math.min(
      1000,
      Math.max(10, Math.floor(Math.min(options.timeoutMs, options.keepAliveMs) / 4)),
    );
  }

  #open(): Connection {
    const conn = new Connection(this);
    this.#all.add(conn);
    this.#sweeper ??= setInterval(() => this.#sweep(), this.#sweepMs).unref();
    return conn;
  }

  #sweep(): void {
    const { timeoutMs, keepAliveMs } = this.options;
    for (const conn of this.#all) {
      if (conn.active || conn.paused || !conn.connected) {
        conn.active = false;
        conn.silentMs = 0;
        continue;
      }
      conn.silentMs += this.#sweepMs;
      if (conn.silentMs >= (conn.exchange === undefined ? keepAliveMs : timeoutMs)) conn.timedOut();
    }
    if (this.#all.size === 0) this.#stopSweeping();
  }

  #stopSweeping(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  get size(): number {
    return this.#all.size;
  }

  get idle(): number {
    return this.#idle.length;
  }

  /** Requests waiting for a connection now (aborted ones still counted until their turn). */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  #dequeue(): Queued | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const next = this.#queue[this.#head] as Queued;
    this.#head += 1;
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return next;
  }

  #waited(since: number): void {
    const seconds = (performance.now() - since) / 1000;
    const c = this.counters;
    c.waits += 1;
    c.waitSeconds += seconds;
    let i = 0;
    while (i < WAIT_BUCKETS.length - 1 && seconds > (WAIT_BUCKETS[i] as number)) i++;
    if (seconds <= (WAIT_BUCKETS[i] as number)) c.waitBuckets[i] = (c.waitBuckets[i] ?? 0) + 1;
  }

  /**
   * Sends `head` (a complete request head, ending with a blank line) and reports to `handler`.
   * `upgrade`: the head asks to switch protocols, and only then may the answer be a `101`.
   */
  request(method: string, head: string, handler: UpstreamHandler, upgrade = false): UpstreamExchange {
    const pending: Pending = { head, method, upgrade, handler, exchange: undefined };
    const exchange = new Exchange(pending);
    this.counters.requests += 1;
    if (this.#closed) {
      queueMicrotask(() => handler.onError(new UpstreamError('UPSTREAM_CLOSED', 'pool closed'), false));
      return exchange;
    }
    let conn = this.#idle.pop();
    while (conn?.socket.destroyed) conn = this.#idle.pop();
    if (conn === undefined) {
      if (this.#all.size >= this.options.connections) {
        this.#queue.push({ exchange, pending, since: performance.now() });
        return exchange;
      }
      conn = this.#open();
    }
    conn.start(exchange, pending);
    return exchange;
  }

  /** A connection finished an exchange (`reusable`) or closed. */
  release(conn: Connection, reusable: boolean): void {
    if (!reusable) {
      if (!this.#all.delete(conn)) return;
      const i = this.#idle.indexOf(conn);
      if (i !== -1) this.#idle.splice(i, 1);
    }
    // hand the connection (or a fresh one) to the next queued request
    for (let next = this.#dequeue(); next !== undefined; next = this.#dequeue()) {
      if (next.exchange.aborted) continue;
      this.#waited(next.since);
      if (reusable && !this.#closed) {
        conn.start(next.exchange, next.pending);
        return;
      }
      if (this.#closed) {
        next.pending.handler.onError(new UpstreamError('UPSTREAM_CLOSED', 'pool closed'), false);
        continue;
      }
      const fresh = this.#open();
      fresh.start(next.exchange, next.pending);
      return;
    }
    if (reusable) {
      if (this.#closed) conn.socket.destroy();
      else this.#idle.push(conn);
    }
  }

  /** Closes idle connections now and the others once their exchange ends. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#idle) conn.socket.destroy();
    this.#idle.length = 0;
  }

  /** Closes every connection now. */
  destroy(): void {
    this.#closed = true;
    for (const conn of this.#all) conn.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
    this.#stopSweeping();
  }
}
