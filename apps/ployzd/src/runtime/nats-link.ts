/**
 * The daemon's NATS connection to its own ployz-nats. The data plane may still be starting (or
 * NATS may be recreated), so the link keeps retrying the first connect in the background and
 * reconnects forever afterwards; status shows its state and last error.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { connectStore, type NkeySeedSource, type StoreConnection } from '@ployz/store';

export type NatsLinkState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface NatsLinkStatus {
  url: string;
  state: NatsLinkState;
  since: string;
  last_error: string | null;
}

export class NatsLink {
  #conn: StoreConnection | null = null;
  #state: NatsLinkState = 'connecting';
  #since = new Date().toISOString();
  #connectError: string | null = null;
  #closed = false;
  #waiters: ((nc: NatsConnection) => void)[] = [];

  readonly url: string;
  readonly #nkeySeed: NkeySeedSource | undefined;

  /**
   * `nkeySeed`: ployzd's own NATS identity (a function is read again at every reconnect, so a
   * rotated seed is picked up); none for an operator-given server without auth.
   */
  constructor(url: string, nkeySeed?: NkeySeedSource) {
    this.url = url;
    this.#nkeySeed = nkeySeed;
  }

  get connection(): NatsConnection | null {
    return this.#state === 'connected' ? (this.#conn?.nc ?? null) : null;
  }

  status(): NatsLinkStatus {
    const lastError = this.#conn === null ? this.#connectError : this.#conn.lastError;
    return { url: this.url, state: this.#state, since: this.#since, last_error: lastError };
  }

  /** Resolves once connected (or never, if closed first). */
  ready(): Promise<NatsConnection> {
    if (this.#conn) return Promise.resolve(this.#conn.nc);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #set(state: NatsLinkState) {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = new Date().toISOString();
  }

  start(): void {
    void this.#connectLoop();
  }

  /**
   * The first connect is retried here (the data plane may still be starting), each failure kept
   * for status; from then on @ployz/store's connection reconnects forever and reports its state.
   */
  async #connectLoop(): Promise<void> {
    let delay = 200;
    while (!this.#closed) {
      try {
        const conn = await connectStore({
          servers: this.url,
          name: 'ployzd',
          nkeySeed: this.#nkeySeed,
          timeoutMs: 2000,
          minBackoffMs: 250,
          maxBackoffMs: 3000,
        });
        if (this.#closed) {
          await conn.close();
          return;
        }
        this.#conn = conn;
        this.#connectError = null;
        this.#set('connected');
        conn.onState((state) => this.#set(state));
        for (const w of this.#waiters.splice(0)) w(conn.nc);
        return;
      } catch (error) {
        const cause = (error as { cause?: unknown }).cause;
        this.#connectError = cause instanceof Error ? cause.message : String(cause ?? error);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 3000);
      }
    }
  }

  /** Round-trip time to the server, or null when not connected. */
  async rtt(): Promise<number | null> {
    const nc = this.connection;
    if (!nc) return null;
    try {
      return await nc.rtt();
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#conn?.close();
    this.#set('closed');
  }
}
