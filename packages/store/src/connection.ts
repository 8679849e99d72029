/**
 * A NATS connection that reconnects forever with backoff and exposes its state.
 *
 * `state` is one of connecting/connected/reconnecting/disconnected/closed; `onState(fn)` calls
 * `fn` on every change (returns an unsubscribe function). The connection never gives up by
 * itself: only `close()` ends it.
 */
import { connect, type NatsConnection, nkeyAuthenticator } from '@nats-io/transport-node';
import { PloyzError } from '@ployz/types';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'disconnected' | 'closed';

export interface ConnectOptions {
  servers: string | string[];
  /** Client name shown by the server (`ployzd`, `ployz-gateway`…). */
  name?: string;
  /** First wait between reconnect attempts; doubles up to `maxBackoffMs`. Default 250 ms. */
  minBackoffMs?: number;
  /** Default 5 s. */
  maxBackoffMs?: number;
  /** Timeout of each connect attempt. Default 5 s. */
  timeoutMs?: number;
  /**
   * Keep trying the first connection too (resolves once NATS answers). Default false: the first
   * attempt failing is STORE_UNAVAILABLE at once.
   */
  waitOnFirstConnect?: boolean;
  /**
   * NKey seed (`SU…`) this client authenticates with, or a function that returns the current one
   * (read again at every connect and reconnect, so a rotated seed is picked up); none for a
   * server without auth.
   */
  nkeySeed?: NkeySeedSource | undefined;
  /** Prefix of this client's reply inboxes (default `_INBOX`); see `inboxPrefixOf`. */
  inboxPrefix?: string | undefined;
}

export type NkeySeedSource = string | (() => string);

/**
 * The connect options for an NKey seed (ployzd, the edge apps and tests share them). A client
 * whose key was rotated away is disconnected by the server with an authorization error; it keeps
 * reconnecting (with the seed it reads then) instead of giving up after two such errors.
 */
export function nkeyAuth(seed: NkeySeedSource | undefined) {
  if (!seed) return {};
  const source = typeof seed === 'string' ? () => seed : seed;
  return {
    authenticator: nkeyAuthenticator(() => new TextEncoder().encode(source())),
    ignoreAuthErrorAbort: true,
  };
}

export interface StoreConnection {
  readonly nc: NatsConnection;
  readonly state: ConnectionState;
  /** The last error the server or the client reported on this connection (null: none yet). */
  readonly lastError: string | null;
  onState(listener: (state: ConnectionState) => void): () => void;
  close(): Promise<void>;
}

/** Exponential backoff with full jitter, as a pure function (attempt counts from 1). */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export async function connectStore(options: ConnectOptions): Promise<StoreConnection> {
  const minMs = options.minBackoffMs ?? 250;
  const maxMs = options.maxBackoffMs ?? 5000;
  let attempt = 0;
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: options.servers,
      ...(options.name ? { name: options.name } : {}),
      ...nkeyAuth(options.nkeySeed),
      ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
      maxReconnectAttempts: -1,
      reconnect: true,
      timeout: options.timeoutMs ?? 5000,
      pingInterval: 10_000,
      maxPingOut: 3,
      reconnectDelayHandler: () => backoffMs(++attempt, minMs, maxMs),
      ...(options.waitOnFirstConnect ? { waitOnFirstConnect: true } : {}),
    });
  } catch (cause) {
    throw new PloyzError(
      'STORE_UNAVAILABLE',
      `cannot reach NATS at ${String(options.servers)}: is nats-server (ployz-nats) running?`,
      { cause, details: { servers: options.servers } },
    );
  }
  return monitor(nc, () => {
    attempt = 0;
  });
}

/** Wraps an existing connection (e.g. one made by a test) with state tracking. */
export function monitor(nc: NatsConnection, onReconnected: () => void = () => {}): StoreConnection {
  let state: ConnectionState = nc.isClosed() ? 'closed' : 'connected';
  let lastError: string | null = null;
  const listeners = new Set<(s: ConnectionState) => void>();
  const set = (next: ConnectionState) => {
    if (next === state) return;
    state = next;
    for (const fn of listeners) fn(next);
  };
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          set('disconnected');
          break;
        case 'reconnecting':
          set('reconnecting');
          break;
        case 'reconnect':
          onReconnected();
          set('connected');
          break;
        case 'close':
          set('closed');
          break;
        case 'error':
          lastError = String((s as { error?: unknown }).error ?? 'error');
          break;
        default:
          break;
      }
    }
  })().catch(() => {});
  void nc.closed().then(() => set('closed'));
  return {
    nc,
    get state() {
      return state;
    },
    get lastError() {
      return lastError;
    },
    onState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
