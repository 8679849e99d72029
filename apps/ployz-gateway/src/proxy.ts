/**
 * The reverse proxy: routes a request by host and path through the current table, picks a
 * backend round robin, forwards over a keep-alive pool and streams the answer back. It never
 * throws into the server: every failure becomes a short 4xx/5xx naming the reason.
 *
 * This file is the façade and owns what outlives one request (the upstream pools of each backend,
 * the open tunnels, the in-flight count); the parts live in proxy/:
 * - resolve.ts: request target in canonical form, and route lookup (or the refusal);
 * - balance.ts: which backend (round robin, passing over backends that refused);
 * - retry.ts: what a failure before any answer leads to (retry, 502, 504);
 * - bodyless.ts: bodyless requests over the lean client (upstream/), with retries;
 * - with-body.ts: requests with a body over undici, never replayed;
 * - tunnel.ts: upgrade requests, tunnelled after the backend's `101`;
 * - replies.ts: the gateway's own answers, built in one place.
 */
import type http from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Backend, RouteTable } from '@ployz/routing';
import type { Pool } from 'undici';
import { plainUpstreamHead, scanRequestHeaders } from './forwarded-headers.ts';
import type { GatewayMetrics, PoolStats } from './metrics.ts';
import { Balancer } from './proxy/balance.ts';
import {
  type BodylessDeps,
  type ClientSide,
  LeanExchange,
  NodeClient,
  requestHead,
} from './proxy/bodyless.ts';
import { type OwnAnswer, sendError } from './proxy/replies.ts';
import {
  BAD_ESCAPE,
  CONNECT_REFUSED,
  type EdgeAnswers,
  NO_ROUTE,
  requestTarget,
  resolveRoute,
} from './proxy/resolve.ts';
import { UpgradeClient } from './proxy/tunnel.ts';
import { BodyExchange, type Undici, type WithBodyDeps } from './proxy/with-body.ts';
import { type PlainRequestHead, plainRawHeaders } from './request-head.ts';
import { normalizeTarget } from './request-target.ts';
import { UpstreamPool } from './upstream/pool.ts';

// What gateway.ts takes from the proxy for the answers it writes itself (CONNECT, client errors).
export { closingErrorResponse } from './proxy/replies.ts';
export { CONNECT_REFUSED } from './proxy/resolve.ts';

export type Proto = 'http' | 'https';
type AnyRequest = http.IncomingMessage | Http2ServerRequest;
type AnyResponse = http.ServerResponse | Http2ServerResponse;

export interface ProxyLimits {
  bodyIdleTimeoutMs: number;
  upstreamTimeoutMs: number;
  connectTimeoutMs: number;
}

export interface ProxyOptions {
  /** The route table being served right now (undefined before the first load). */
  table(): RouteTable | undefined;
  metrics: GatewayMetrics;
  limits: ProxyLimits;
  /** Most connections kept open to one backend (default 256). */
  connectionsPerBackend?: number;
  /** Machines marked down now (proxy/machine-health.ts): their backends are passed over. */
  machinesDown?: ReadonlySet<string>;
  /** ACME challenge answers and https redirects on plain HTTP (acme.ts). */
  edge?: EdgeAnswers;
}

/** Idle upstream keep-alive connections are closed after this (below node's 5 s server default). */
const UPSTREAM_KEEP_ALIVE_MS = 4000;

export class ReverseProxy {
  readonly #options: ProxyOptions;
  /** undici pools (requests with a body), by backend key. */
  readonly #pools = new Map<string, Pool>();
  /** Lean pools (bodyless requests and upgrades), by backend key. */
  readonly #lean = new Map<string, UpstreamPool>();
  readonly #tunnels = new Set<Duplex>();
  readonly #bodyless: BodylessDeps;
  readonly #withBody: WithBodyDeps;
  #inFlight = 0;

  constructor(options: ProxyOptions) {
    this.#options = options;
    const balancer = new Balancer(options.machinesDown);
    this.#bodyless = { metrics: options.metrics, balancer, pool: (backend) => this.#leanPool(backend) };
    this.#withBody = {
      metrics: options.metrics,
      balancer,
      bodyIdleTimeoutMs: options.limits.bodyIdleTimeoutMs,
      pool: (backend, u) => this.#bodyPool(backend, u),
    };
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Open upgraded connections (WebSockets). */
  get tunnels(): number {
    return this.#tunnels.size;
  }

  /** Closes every upgraded connection (shutdown: they are not HTTP requests and never drain). */
  closeTunnels(): void {
    for (const socket of this.#tunnels) socket.destroy();
  }

  /** Closes upstream pools of backends no longer in `table` (call after each table swap). */
  prunePools(table: RouteTable): void {
    const keep = new Set<string>();
    for (const routes of [table.exact, table.wildcard]) {
      for (const list of routes.values())
        for (const route of list) for (const b of route.backends) keep.add(b.key);
    }
    for (const [key, pool] of this.#pools) {
      if (!keep.has(key)) {
        this.#pools.delete(key);
        void pool.close().catch(() => undefined);
      }
    }
    for (const [key, pool] of this.#lean) {
      if (!keep.has(key)) {
        this.#lean.delete(key);
        pool.close();
      }
    }
  }

  /**
   * A machine was marked down: every pooled connection to `backends` goes now. Exchanges waiting
   * on them fail as closed before an answer, so idempotent bodyless ones are retried on another
   * machine (proxy/retry.ts); the others answer 502.
   */
  dropBackends(backends: readonly Backend[]): void {
    for (const b of backends) {
      const lean = this.#lean.get(b.key);
      if (lean !== undefined) {
        this.#lean.delete(b.key);
        lean.destroy();
      }
      const pool = this.#pools.get(b.key);
      if (pool !== undefined) {
        this.#pools.delete(b.key);
        void pool.destroy().catch(() => undefined);
      }
    }
  }

  /** The lean pool of each backend, with its queue (metrics). */
  *poolStats(): Iterable<PoolStats> {
    for (const [backend, pool] of this.#lean)
      yield { backend, open: pool.size, idle: pool.idle, queued: pool.queued, counters: pool.counters };
  }

  /** Closes every upstream pool. */
  async close(): Promise<void> {
    for (const pool of this.#lean.values()) pool.destroy();
    this.#lean.clear();
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => undefined)));
  }

  #leanPool(backend: Backend): UpstreamPool {
    let pool = this.#lean.get(backend.key);
    if (pool === undefined) {
      const limits = this.#options.limits;
      pool = new UpstreamPool({
        host: backend.host,
        port: backend.port,
        connections: this.#options.connectionsPerBackend ?? 256,
        connectTimeoutMs: limits.connectTimeoutMs,
        timeoutMs: limits.upstreamTimeoutMs,
        keepAliveMs: UPSTREAM_KEEP_ALIVE_MS,
      });
      this.#lean.set(backend.key, pool);
    }
    return pool;
  }

  #bodyPool(backend: Backend, u: Undici): Pool {
    let pool = this.#pools.get(backend.key);
    if (pool === undefined) {
      const limits = this.#options.limits;
      pool = new u.Pool(`http://${backend.key}`, {
        connections: this.#options.connectionsPerBackend ?? 256,
        pipelining: 1,
        keepAliveTimeout: UPSTREAM_KEEP_ALIVE_MS,
        connect: { timeout: limits.connectTimeoutMs },
        headersTimeout: limits.upstreamTimeoutMs,
        bodyTimeout: limits.upstreamTimeoutMs,
      });
      this.#pools.set(backend.key, pool);
    }
    return pool;
  }

  /** `request` handler for node:http and node:http2 (compat API) servers. */
  handle(req: AnyRequest, res: AnyResponse, proto: Proto): void {
    this.#inFlight += 1;
    let exchange: LeanExchange | BodyExchange | undefined;
    res.once('close', () => {
      this.#inFlight -= 1;
      if (!res.writableFinished) exchange?.cancel();
    });
    const table = this.#options.table();
    if (table === undefined) {
      this.#reject(req, res, 503, NO_ROUTE, 'routing table not loaded yet');
      return;
    }
    const h2 = req.httpVersionMajor === 2;
    if (h2 && !('stream' in req)) {
      // `HTTP/2.0` written in HTTP/1 syntax (llhttp takes it): not a version the gateway speaks so.
      this.#reject(req, res, 505, NO_ROUTE, 'HTTP/2 is spoken over TLS (ALPN h2) only');
      return;
    }
    if (req.method === 'CONNECT') {
      this.#reject(req, res, 405, NO_ROUTE, CONNECT_REFUSED);
      return;
    }
    const target = requestTarget(req);
    if (typeof target === 'string') {
      this.#reject(req, res, 400, NO_ROUTE, target);
      return;
    }
    const { path } = target;
    const scan = scanRequestHeaders(target.rawHeaders, req.socket?.remoteAddress, proto, false);
    if (scan.invalid !== undefined) {
      this.#reject(req, res, 400, NO_ROUTE, scan.invalid);
      return;
    }
    const resolved = resolveRoute(table, scan.host, path, proto === 'http' ? this.#options.edge : undefined);
    if (!('route' in resolved)) {
      this.#reject(req, res, resolved.status, resolved.label, resolved.reason, resolved.own);
      return;
    }
    const route = resolved.route;
    const method = req.method ?? 'GET';
    if (!scan.hasBody) {
      const head = requestHead(method, path, scan.headers);
      const lean = new LeanExchange(this.#bodyless, new NodeClient(res, h2), route, method, head);
      exchange = lean;
      lean.send();
      return;
    }
    const withBody = new BodyExchange(this.#withBody, req, res, route, method, path, scan.headers);
    exchange = withBody;
    withBody.start();
  }

  /**
   * The fast path's entry (front-http1.ts): a plain bodyless HTTP/1.1 request. The caller counts
   * it as settled with `settled()` once its answer is written or the client is gone.
   */
  serveFast(
    client: ClientSide,
    head: PlainRequestHead,
    remoteAddress: string | undefined,
    proto: Proto,
  ): LeanExchange | undefined {
    this.#inFlight += 1;
    const metrics = this.#options.metrics;
    const table = this.#options.table();
    if (table === undefined) {
      metrics.request(NO_ROUTE, 503);
      client.reply(503, 'routing table not loaded yet');
      return undefined;
    }
    const path = normalizeTarget(head.target);
    if (path === undefined) {
      metrics.request(NO_ROUTE, 400);
      client.reply(400, BAD_ESCAPE);
      return undefined;
    }
    let host = head.host;
    let upstreamHead: string;
    // A target normalised into another string is forwarded in that form: the head is rebuilt.
    if (head.verbatim && path === head.target) {
      upstreamHead = plainUpstreamHead(head.text, head.drop, host, head.forwardedFor, remoteAddress, proto);
    } else {
      const scan = scanRequestHeaders(plainRawHeaders(head), remoteAddress, proto, false);
      if (scan.invalid !== undefined) {
        metrics.request(NO_ROUTE, 400);
        client.reply(400, scan.invalid);
        return undefined;
      }
      host = scan.host ?? host;
      upstreamHead = requestHead(head.method, path, scan.headers);
    }
    const resolved = resolveRoute(table, host, path, proto === 'http' ? this.#options.edge : undefined);
    if (!('route' in resolved)) {
      metrics.request(resolved.label, resolved.status);
      client.reply(resolved.status, resolved.reason, resolved.own);
      return undefined;
    }
    const x = new LeanExchange(this.#bodyless, client, resolved.route, head.method, upstreamHead);
    x.send();
    return x;
  }

  /** A fast-path exchange is over (answered, or its client gone). */
  settled(): void {
    this.#inFlight -= 1;
  }

  /**
   * `upgrade` handler (WebSocket and other HTTP/1.1 upgrades). The request is routed like any
   * other and sent upstream; only the backend's `101` turns the connection into a byte tunnel
   * (proxy/tunnel.ts).
   */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, proto: Proto): void {
    socket.on('error', () => socket.destroy());
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    const client = new UpgradeClient(socket, head, this.#options.metrics);
    const table = this.#options.table();
    const fail = (status: number, label: string, reason: string) => {
      this.#options.metrics.request(label, status);
      client.reply(status, reason);
    };
    if (table === undefined) {
      fail(503, NO_ROUTE, 'routing table not loaded yet');
      return;
    }
    const target = requestTarget(req);
    if (typeof target === 'string') {
      fail(400, NO_ROUTE, target);
      return;
    }
    const { path } = target;
    const scan = scanRequestHeaders(target.rawHeaders, req.socket.remoteAddress, proto, true);
    if (scan.invalid !== undefined) {
      fail(400, NO_ROUTE, scan.invalid);
      return;
    }
    const resolved = resolveRoute(table, scan.host, path);
    if (!('route' in resolved)) {
      fail(resolved.status, resolved.label, resolved.reason);
      return;
    }
    // Connection says `upgrade` and nothing else: what it named was dropped with the other hop-by-hop lines.
    const headers = scan.headers;
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() === 'connection') headers[i + 1] = 'upgrade';
    }
    const method = req.method ?? 'GET';
    const x = new LeanExchange(
      this.#bodyless,
      client,
      resolved.route,
      method,
      requestHead(method, path, headers),
      true,
    );
    client.exchange = x;
    socket.once('close', () => x.cancel());
    x.send();
  }

  #reject(
    req: AnyRequest,
    res: AnyResponse,
    status: number,
    label: string,
    reason: string,
    own?: OwnAnswer,
  ): void {
    this.#options.metrics.request(label, status);
    req.resume();
    sendError(res, status, reason, false, own);
  }
}
