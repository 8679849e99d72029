/**
 * The ployz-dns service: a routing follower whose projection is the compiled answer table, the
 * DNS listeners that serve it, the forwarder, and the admin listener. Used by main.ts and by
 * tests (which pass their own feed and ports).
 */
import type { AddressInfo } from 'node:net';
import { createFollower, DNS_ZONE, type Follower, type Freshness, projectDns } from '@ployz/routing';
import type { RoutingFeed } from '@ployz/types';
import { AdminServer } from './admin.ts';
import { type AnswerTable, compileAnswers } from './answers.ts';
import type { HostPort } from './config.ts';
import { ForwardCache, type ForwardCacheOptions } from './forward-cache.ts';
import { Forwarder, type Upstream } from './forwarder.ts';
import { renderMetrics } from './metrics.ts';
import { DnsServer } from './server.ts';

export interface DnsServiceOptions {
  feed: RoutingFeed;
  listen: HostPort[];
  admin: HostPort | null;
  upstreams: Upstream[];
  upstreamTimeoutMs: number;
  /**
   * Forward cache bounds (default 10,000 answers, 3600 s; maxEntries 0 turns it off), and its
   * milliseconds clock (tests; default Date.now).
   */
  cache?: ForwardCacheOptions;
  zone?: string;
  /** TCP limits (defaults: DEFAULT_TCP_MESSAGE_MS per message, DEFAULT_TCP_MAX_PER_SOURCE). */
  tcp?: { messageMs: number; maxPerSource: number };
  /** SO_REUSEPORT on the DNS listeners, for several worker processes (see main.ts --workers). */
  reusePort?: boolean;
  /**
   * Replace-beside (docs/adr/0014-replace-beside.md): bind the DNS listeners only once the first
   * view is loaded, waiting at most this long; and answer admin on `adminAltPort` while the admin
   * port is taken. 0 or unset: bind at once, as a single instance.
   */
  startWaitMs?: number;
  adminAltPort?: number;
  /** Told about feed and rebuild failures (the app logs them). */
  onError?(error: unknown, context: string): void;
  /** Told about every view swap (the app logs at debug). */
  onUpdate?(table: AnswerTable, freshness: Freshness): void;
}

export interface DnsService {
  readonly server: DnsServer;
  readonly follower: Follower<AnswerTable>;
  readonly forwarder: Forwarder;
  /** Bound DNS addresses (UDP and TCP share each). */
  readonly dnsAddresses: HostPort[];
  readonly adminAddress: AddressInfo | null;
  status(): DnsStatus;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface DnsStatus {
  ready: boolean;
  freshness: Freshness;
  names: number;
  callers: number;
  upstreams: Upstream[];
  forwarder: { inFlight: number; timeouts: number; failures: number; rejected: number; overloaded: number };
  counters: Record<string, number>;
}

export async function startDnsService(options: DnsServiceOptions): Promise<DnsService> {
  const zone = options.zone ?? DNS_ZONE;
  const forwarder = new Forwarder({ upstreams: options.upstreams, timeoutMs: options.upstreamTimeoutMs });
  const cache = new ForwardCache(options.cache ?? { maxEntries: 10_000, maxTtlSeconds: 3600 });
  const server = new DnsServer({
    listen: options.listen,
    zone,
    forwarder,
    cache,
    reusePort: options.reusePort ?? false,
    tcpMessageMs: options.tcp?.messageMs,
    tcpMaxPerSource: options.tcp?.maxPerSource,
  });
  const follower = createFollower<AnswerTable>(options.feed, {
    project: (state) => compileAnswers(projectDns(state, zone)),
    onError: (error, context) => options.onError?.(error, context),
  });
  follower.onUpdate((table, freshness) => {
    server.setAnswers(table);
    options.onUpdate?.(table, freshness);
  });

  const status = (): DnsStatus => {
    const table = server.answers;
    return {
      ready: server.ready,
      freshness: follower.freshness(),
      names: table.size,
      callers: table.callers.size,
      upstreams: [...forwarder.upstreams],
      forwarder: {
        inFlight: forwarder.inFlight,
        timeouts: forwarder.timeouts,
        failures: forwarder.failures,
        rejected: forwarder.rejected,
        overloaded: forwarder.overloaded,
      },
      counters: { ...server.metrics },
    };
  };

  let admin: AdminServer | null = null;
  let adminAddress: AddressInfo | null = null;
  const startWaitMs = options.startWaitMs ?? 0;
  if (startWaitMs > 0) {
    follower.start();
    await firstView(server, startWaitMs);
  }
  try {
    await server.start();
    if (options.admin !== null) {
      admin = new AdminServer({
        health: () => {
          const freshness = follower.freshness();
          return server.ready
            ? { ok: true, reason: freshness.reason }
            : { ok: false, reason: freshness.reason ?? 'no routing view loaded yet' };
        },
        status,
        metrics: () => {
          const freshness = follower.freshness();
          return renderMetrics(
            server.metrics,
            {
              seq: freshness.appliedSeq,
              lastSeq: freshness.streamSeq,
              names: server.answers.size,
              ready: server.ready,
              stale: freshness.stale,
              updatedAtMs: server.updatedAt,
              rebuilds: freshness.rebuilds,
              upstreamTimeouts: forwarder.timeouts,
              upstreamFailures: forwarder.failures,
              upstreamRejected: forwarder.rejected,
              cacheEntries: cache.size,
            },
            Date.now(),
          );
        },
      });
      adminAddress = await admin.listen(
        options.admin.host,
        options.admin.port,
        startWaitMs > 0 ? (options.adminAltPort ?? null) : null,
      );
    }
  } catch (error) {
    await follower.stop();
    await server.close();
    forwarder.close();
    throw error;
  }
  if (startWaitMs === 0) follower.start();

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await follower.stop();
      await server.close();
      await admin?.close();
      forwarder.close();
    })();
    return closed;
  };
  return {
    server,
    follower,
    forwarder,
    dnsAddresses: server.addresses(),
    adminAddress,
    status,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Resolves once the server holds its first view, or after `ms` (it then binds answering SERVFAIL). */
async function firstView(server: DnsServer, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!server.ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
