/**
 * The daemon's NATS connection to its own ployz-nats. The data plane may still be starting (or
 * NATS may be recreated), so the link keeps retrying the first connect in the background and
 * reconnects forever afterwards; status shows its state and last error.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';

export type NatsLinkState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface NatsLinkStatus {
  url: string;
  state: NatsLinkState;
  since: string;
  last_error: string | null;
}

export class NatsLink {
  #nc: NatsConnection | null = null;
  #state: NatsLinkState = 'connecting';
  #since = new Date().toISOString();
  #lastError: string | null = null;
  #closed = false;
  #waiters: ((nc: NatsConnection) => void)[] = [];
  readonly #abort = new AbortController();

  readonly url: string;

  constructor(url: string) {
    this.url = url;
  }

  get connection(): NatsConnection | null {
    return this.#state === 'connected' ? this.#nc : null;
  }

  status(): NatsLinkStatus {
    return { url: this.url, state: this.#state, since: this.#since, last_error: this.#lastError };
  }

  /** Resolves once connected (or never, if closed first). */
  ready(): Promise<NatsConnection> {
    if (this.#nc) return Promise.resolve(this.#nc);
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

  async #connectLoop(): Promise<void> {
    let delay = 200;
    while (!this.#closed) {
      try {
        const nc = await connect({
          servers: this.url,
          name: 'ployzd',
          timeout: 2000,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 500,
          pingInterval: 5000,
          maxPingOut: 2,
        });
        if (this.#closed) {
          await nc.close();
          return;
        }
        this.#nc = nc;
        this.#lastError = null;
        this.#set('connected');
        for (const w of this.#waiters.splice(0)) w(nc);
        void this.#watch(nc);
        return;
      } catch (error) {
        this.#lastError = error instanceof Error ? error.message : String(error);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 3000);
      }
    }
  }

  async #watch(nc: NatsConnection): Promise<void> {
    void nc.closed().then(() => this.#set('closed'));
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') this.#set('disconnected');
      else if (s.type === 'reconnecting') this.#set('reconnecting');
      else if (s.type === 'reconnect') this.#set('connected');
      else if (s.type === 'error') this.#lastError = String((s as { error?: unknown }).error ?? 'error');
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
    this.#abort.abort();
    const nc = this.#nc;
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    this.#set('closed');
  }
}
