/**
 * A NATS connection that reconnects forever with backoff and exposes its state.
 *
 * `state` is one of connecting/connected/reconnecting/disconnected/closed; `onState(fn)` calls
 * `fn` on every change (returns an unsubscribe function). The connection never gives up by
 * itself: only `close()` ends it.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
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
}

export interface StoreConnection {
  readonly nc: NatsConnection;
  readonly state: ConnectionState;
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
    onState(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
