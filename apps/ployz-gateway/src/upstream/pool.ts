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
  readonly #queue: { exchange: Exchange; pending: Pending }[] = [];
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

  /**
   * Sends `head` (a complete request head, ending with a blank line) and reports to `handler`.
   * `upgrade`: the head asks to switch protocols, and only then may the answer be a `101`.
   */
  request(method: string, head: string, handler: UpstreamHandler, upgrade = false): UpstreamExchange {
    const pending: Pending = { head, method, upgrade, handler, exchange: undefined };
    const exchange = new Exchange(pending);
    if (this.#closed) {
      queueMicrotask(() => handler.onError(new UpstreamError('UPSTREAM_CLOSED', 'pool closed'), false));
      return exchange;
    }
    let conn = this.#idle.pop();
    while (conn?.socket.destroyed) conn = this.#idle.pop();
    if (conn === undefined) {
      if (this.#all.size >= this.options.connections) {
        this.#queue.push({ exchange, pending });
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
    while (this.#queue.length > 0) {
      const next = this.#queue.shift() as { exchange: Exchange; pending: Pending };
      if (next.exchange.aborted) continue;
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
