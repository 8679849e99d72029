import http from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import net from 'node:net';
import { type Duplex, PassThrough } from 'node:stream';
import { type Backend, matchRoute, normalizeRequestHost, type Route, type RouteTable } from '@ployz/routing';
import type { Dispatcher, Pool } from 'undici';
import {
  headerObject,
  plainUpstreamHead,
  scanRequestHeaders,
  scanResponseHeaders,
} from './forwarded-headers.ts';
import type { GatewayMetrics } from './metrics.ts';
import { type PlainRequestHead, plainRawHeaders } from './request-head.ts';
import {
  type ResponseHead,
  type UpstreamError,
  type UpstreamExchange,
  type UpstreamHandler,
  UpstreamPool,
} from './upstream-http1.ts';

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
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Errors that mean "the request never reached the backend". */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNTIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
]);
/**
 * The backend closed the connection before sending any byte of an answer: a reused keep-alive
 * socket it closed just before we wrote, or a backend shutting down. Idempotent requests may be
 * retried (RFC 9110 §9.2.2).
 */
const STALE_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UPSTREAM_CLOSED']);
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UPSTREAM_TIMEOUT']);
/** Idle upstream keep-alive connections are closed after this (below node's 5 s server default). */
const UPSTREAM_KEEP_ALIVE_MS = 4000;
const DOWN_FOR_MS = 2000;

type Undici = typeof import('undici');
let undici: Undici | undefined;
let loadingUndici: Promise<Undici> | undefined;
/** undici serves only requests with a body; it is loaded on the first one (RSS at idle). */
function loadUndici(): Promise<Undici> {
  loadingUndici ??= import('undici').then((m) => {
    undici = m;
    return m;
  });
  return loadingUndici;
}
const NO_ROUTE = 'none';

/** An upstream request head from a flat header list (ends with the blank line). */
function requestHead(method: string, path: string, headers: readonly string[]): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

function failureReason(failure: Failure, code: string): string {
  if (failure === 'timeout') return 'upstream timed out';
  return `upstream ${CONNECT_ERRORS.has(code) ? 'connect ' : ''}failed (${code})`;
}

class ConnectTimeoutError extends Error {
  readonly code = 'ECONNTIMEOUT';
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

/**
 * The client half of a bodyless exchange: node:http's (or node:http2's) response, or a fast-path
 * connection (front-http1.ts). The proxy drives it; it never throws.
 */
export interface ClientSide {
  /** The answer started (head queued or sent) or the client is gone: no own reply, no retry. */
  readonly committed: boolean;
  /**
   * The upstream answer's head (hop-by-hop lines still in it: the client side drops them).
   * `contentLength` is -1 when the length is unknown (re-frame).
   */
  sendHead(head: ResponseHead, contentLength: number): void;
  /** A body chunk; `last` completes the body. Returns false to pause until `exchange.resume()`. */
  sendData(chunk: Buffer, last: boolean, exchange: LeanExchange): boolean;
  /** The body is complete (also after `sendData(…, true)`). */
  sendEnd(): void;
  /** The upstream broke after the head was sent: cut the client connection. */
  abort(): void;
  /** The gateway's own short answer (`<status> <reason>`), e.g. 404, 502, 504. */
  reply(status: number, reason: string): void;
}

/** One bodyless request forwarded through the lean upstream client, with its retries. */
export class LeanExchange implements UpstreamHandler {
  readonly #proxy: ReverseProxy;
  readonly client: ClientSide;
  readonly route: Route;
  readonly method: string;
  readonly head: string;
  readonly retryable: boolean;
  readonly start: number;
  attempt = 0;
  sentAt = 0;
  backend: Backend | undefined;
  upstream: UpstreamExchange | undefined;

  constructor(
    proxy: ReverseProxy,
    client: ClientSide,
    route: Route,
    method: string,
    head: string,
    start: number,
  ) {
    this.#proxy = proxy;
    this.client = client;
    this.route = route;
    this.method = method;
    this.head = head;
    this.retryable = IDEMPOTENT.has(method);
    this.start = start;
  }

  onHead(head: ResponseHead, contentLength: number): void {
    this.#proxy.answered(this.route.id, head.status, this.sentAt);
    this.client.sendHead(head, contentLength);
  }

  onData(chunk: Buffer, last: boolean): boolean {
    return this.client.sendData(chunk, last, this);
  }

  onEnd(): void {
    this.client.sendEnd();
  }

  onError(error: UpstreamError, responded: boolean): void {
    if (responded) this.client.abort();
    else this.#proxy.leanFailed(this, error.code);
  }

  /** The client went away: drop the upstream exchange (its connection is closed). */
  cancel(): void {
    this.upstream?.abort();
  }

  /** The client drained: read the upstream again. */
  resume(): void {
    this.upstream?.resume();
  }
}

/** The gateway's own answer body and headers (404/502/…): short, plain text, named reason. */
export function errorBody(status: number, reason: string): string {
  return `${status} ${reason}\n`;
}

interface Exchange {
  req: AnyRequest;
  res: AnyResponse;
  route: Route;
  method: string;
  path: string;
  headers: string[];
  retryable: boolean;
  h2: boolean;
  start: number;
  responded: boolean;
  hasBody: boolean;
  controller: Dispatcher.DispatchController | undefined;
}

type Resolved = { route: Route } | { status: number; label: string; reason: string };

/** node:http / node:http2 responses as the client half of a bodyless exchange. */
class NodeClient implements ClientSide {
  readonly #res: AnyResponse;
  readonly #h2: boolean;
  #ended = false;
  constructor(res: AnyResponse, h2: boolean) {
    this.#res = res;
    this.#h2 = h2;
  }
  get committed(): boolean {
    return this.#res.headersSent || this.#res.destroyed;
  }
  sendHead(head: ResponseHead): void {
    const scan = scanResponseHeaders(head.headers);
    if (this.#h2) {
      (this.#res as Http2ServerResponse).writeHead(head.status, headerObject(scan.headers));
    } else {
      const r = this.#res as http.ServerResponse;
      if (scan.hasDate) r.sendDate = false;
      r.writeHead(head.status, scan.headers);
    }
  }
  sendData(chunk: Buffer, last: boolean, exchange: LeanExchange): boolean {
    const res = this.#res;
    const own = Buffer.from(chunk); // the chunk is the upstream's shared read buffer
    if (last) {
      this.#ended = true;
      res.end(own);
      return true;
    }
    if ((res as http.ServerResponse).write(own)) return true;
    res.once('drain', () => exchange.resume());
    return false;
  }
  sendEnd(): void {
    if (!this.#ended) this.#res.end();
  }
  abort(): void {
    this.#res.destroy();
  }
  reply(status: number, reason: string): void {
    sendError(this.#res, status, reason);
  }
}

function sendError(res: AnyResponse, status: number, reason: string): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = errorBody(status, reason);
  const headers = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'x-ployz-gateway': 'error',
  };
  (res as http.ServerResponse).writeHead(status, headers);
  res.end(body);
}

type Failure = 'timeout' | 'retry' | 'fail';

/**
 * The reverse proxy: routes a request by host and path through the current table, picks a
 * backend round robin, forwards over a keep-alive pool and streams the answer back. It never
 * throws into the server: every failure becomes a short 4xx/5xx naming the reason.
 */
export class ReverseProxy {
  readonly #options: ProxyOptions;
  readonly #pools = new Map<string, Pool>();
  readonly #lean = new Map<string, UpstreamPool>();
  readonly #roundRobin = new Map<string, number>();
  readonly #downUntil = new Map<string, number>();
  readonly #tunnels = new Set<Duplex>();
  #inFlight = 0;

  constructor(options: ProxyOptions) {
    this.#options = options;
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

  #pool(backend: Backend, u: Undici): Pool {
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
    let exchange: Exchange | undefined;
    let lean: LeanExchange | undefined;
    res.once('close', () => {
      this.#inFlight -= 1;
      if (!res.writableFinished) {
        exchange?.controller?.abort(new Error('client closed the connection'));
        lean?.cancel();
      }
    });
    const table = this.#options.table();
    if (table === undefined) {
      this.#reject(req, res, 503, NO_ROUTE, 'routing table not loaded yet');
      return;
    }
    const h2 = req.httpVersionMajor === 2;
    const scan = scanRequestHeaders(req.rawHeaders, req.socket?.remoteAddress, proto, false);
    if (scan.invalid !== undefined) {
      this.#reject(req, res, 400, NO_ROUTE, scan.invalid);
      return;
    }
    let path = req.url ?? '/';
    let hostHeader = scan.host;
    if (path.charCodeAt(0) !== 47 /* / */ && path !== '*') {
      // absolute-form request target: its authority wins over Host (RFC 9112 §3.2.2).
      try {
        const url = new URL(path);
        hostHeader = url.host;
        path = `${url.pathname}${url.search}`;
      } catch {
        this.#reject(req, res, 400, NO_ROUTE, 'malformed request target');
        return;
      }
    }
    const resolved = this.#resolve(table, hostHeader, path);
    if (!('route' in resolved)) {
      this.#reject(req, res, resolved.status, resolved.label, resolved.reason);
      return;
    }
    const route = resolved.route;
    const method = req.method ?? 'GET';
    if (!scan.hasBody) {
      lean = this.#startLean(new NodeClient(res, h2), route, method, requestHead(method, path, scan.headers));
      return;
    }
    exchange = {
      req,
      res,
      route,
      method,
      path,
      headers: scan.headers,
      retryable: IDEMPOTENT.has(method) && !scan.hasBody,
      h2,
      start: this.#pick(route),
      responded: false,
      hasBody: scan.hasBody,
      controller: undefined,
    };
    this.#forwardUndici(exchange, 0);
    this.#watchBodyIdle(exchange);
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
    let host = head.host;
    let upstreamHead: string;
    if (head.verbatim) {
      upstreamHead = plainUpstreamHead(head.text, head.drop, host, head.forwardedFor, remoteAddress, proto);
    } else {
      const scan = scanRequestHeaders(plainRawHeaders(head), remoteAddress, proto, false);
      if (scan.invalid !== undefined) {
        metrics.request(NO_ROUTE, 400);
        client.reply(400, scan.invalid);
        return undefined;
      }
      host = scan.host ?? host;
      upstreamHead = requestHead(head.method, head.target, scan.headers);
    }
    const resolved = this.#resolve(table, host, head.target);
    if (!('route' in resolved)) {
      metrics.request(resolved.label, resolved.status);
      client.reply(resolved.status, resolved.reason);
      return undefined;
    }
    return this.#startLean(client, resolved.route, head.method, upstreamHead);
  }

  /** A fast-path exchange is over (answered, or its client gone). */
  settled(): void {
    this.#inFlight -= 1;
  }

  #resolve(table: RouteTable, hostHeader: string | undefined, path: string): Resolved {
    const route = matchRoute(table, normalizeRequestHost(hostHeader), path);
    if (route === undefined)
      return { status: 404, label: NO_ROUTE, reason: 'no route for this host and path' };
    if (route.backends.length === 0)
      return {
        status: 503,
        label: route.id,
        reason: `no routable backend for ${route.namespace}/${route.service}`,
      };
    return { route };
  }

  /** `upgrade` handler (WebSocket and other HTTP/1.1 upgrades): a raw byte tunnel after routing. */
  upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, proto: Proto): void {
    socket.on('error', () => socket.destroy());
    this.#tunnels.add(socket);
    socket.once('close', () => this.#tunnels.delete(socket));
    const table = this.#options.table();
    const scan = scanRequestHeaders(req.rawHeaders, req.socket.remoteAddress, proto, true);
    const host = normalizeRequestHost(scan.host);
    const route = table === undefined ? undefined : matchRoute(table, host, req.url ?? '/');
    const fail = (status: number, label: string, reason: string) => {
      this.#options.metrics.request(label, status);
      const body = errorBody(status, reason);
      socket.end(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    };
    if (table === undefined) {
      fail(503, NO_ROUTE, 'routing table not loaded yet');
      return;
    }
    if (scan.invalid !== undefined) {
      fail(400, NO_ROUTE, scan.invalid);
      return;
    }
    if (route === undefined) {
      fail(404, NO_ROUTE, 'no route for this host and path');
      return;
    }
    if (route.backends.length === 0) {
      fail(503, route.id, `no routable backend for ${route.namespace}/${route.service}`);
      return;
    }
    const backend = route.backends[this.#pick(route) % route.backends.length] as Backend;
    const upstream = net.connect({ host: backend.host, port: backend.port });
    const timer = setTimeout(
      () => upstream.destroy(new ConnectTimeoutError('connect timeout')),
      this.#options.limits.connectTimeoutMs,
    );
    let connected = false;
    upstream.once('connect', () => {
      clearTimeout(timer);
      connected = true;
      this.#options.metrics.upgrade();
      this.#options.metrics.request(route.id, 101);
      let head0 = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
      for (let i = 0; i < scan.headers.length; i += 2)
        head0 += `${scan.headers[i]}: ${scan.headers[i + 1]}\r\n`;
      upstream.write(`${head0}\r\n`);
      if (head.length > 0) upstream.write(head);
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    upstream.on('error', (error) => {
      clearTimeout(timer);
      this.#options.metrics.upstreamError();
      if (!connected) fail(502, route.id, `upstream connect failed (${errorCode(error)})`);
      else socket.destroy();
    });
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
  }

  #pick(route: Route): number {
    const n = route.backends.length;
    const next = this.#roundRobin.get(route.id) ?? 0;
    this.#roundRobin.set(route.id, next + 1 >= 1 << 30 ? 0 : next + 1);
    if (this.#downUntil.size === 0 || n === 1) return next;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const b = route.backends[(next + i) % n] as Backend;
      const until = this.#downUntil.get(b.key);
      if (until === undefined || until < now) return next + i;
    }
    return next;
  }

  #startLean(client: ClientSide, route: Route, method: string, head: string): LeanExchange {
    const x = new LeanExchange(this, client, route, method, head, this.#pick(route));
    this.#sendLean(x);
    return x;
  }

  #sendLean(x: LeanExchange): void {
    const backends = x.route.backends;
    const backend = backends[(x.start + x.attempt) % backends.length] as Backend;
    x.backend = backend;
    x.sentAt = performance.now();
    x.upstream = this.#leanPool(backend).request(x.method, x.head, x);
  }

  /** An upstream answered a lean exchange (metrics). */
  answered(routeId: string, status: number, sentAt: number): void {
    const metrics = this.#options.metrics;
    metrics.upstreamLatency(routeId, (performance.now() - sentAt) / 1000);
    metrics.request(routeId, status);
  }

  /** A lean exchange failed before any answer: 504, retry on the next backend, or 502. */
  leanFailed(x: LeanExchange, code: string): void {
    if (x.client.committed) return;
    const metrics = this.#options.metrics;
    const failure = this.#failure(code, x.retryable, x.attempt, x.route, x.backend);
    if (failure === 'retry') {
      metrics.retry();
      x.attempt += 1;
      this.#sendLean(x);
      return;
    }
    metrics.upstreamError();
    metrics.request(x.route.id, failure === 'timeout' ? 504 : 502);
    x.client.reply(failure === 'timeout' ? 504 : 502, failureReason(failure, code));
  }

  /** What a failure before any answer leads to (and marks a backend that refused as down). */
  #failure(
    code: string,
    retryable: boolean,
    attempt: number,
    route: Route,
    backend: Backend | undefined,
  ): Failure {
    if (TIMEOUT_ERRORS.has(code)) return 'timeout';
    const connectFailed = CONNECT_ERRORS.has(code);
    if (connectFailed && backend !== undefined) this.#downUntil.set(backend.key, Date.now() + DOWN_FOR_MS);
    const mayRetry = connectFailed || STALE_SOCKET_ERRORS.has(code);
    if (mayRetry && retryable && attempt + 1 < Math.max(route.backends.length, 2)) return 'retry';
    return 'fail';
  }

  /** A request with a body failed before any answer: 504 or 502 (bodies are never replayed). */
  #upstreamFailed(x: Exchange, attempt: number, backend: Backend, code: string): void {
    const res = x.res;
    // Already answered by the gateway itself (e.g. 408), or the client is gone.
    if (res.headersSent || res.destroyed) return;
    const metrics = this.#options.metrics;
    const failure = this.#failure(code, x.retryable, attempt, x.route, backend);
    if (failure === 'retry') {
      metrics.retry();
      this.#forwardUndici(x, attempt + 1);
      return;
    }
    metrics.upstreamError();
    x.req.unpipe();
    x.req.resume();
    this.#fail(x, failure === 'timeout' ? 504 : 502, failureReason(failure, code));
  }

  /** Requests with a body: undici (streaming, re-framing, never replayed). */
  #forwardUndici(x: Exchange, attempt: number): void {
    const backends = x.route.backends;
    const backend = backends[(x.start + attempt) % backends.length] as Backend;
    const sentAt = performance.now();
    const metrics = this.#options.metrics;
    const res = x.res;
    let body: PassThrough | null = null;
    if (x.hasBody) {
      // A pass-through, so a failed upstream never destroys the client's request (and socket).
      body = new PassThrough();
      x.req.pipe(body);
    }
    let drainWaiting = false;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (controller) => {
        x.controller = controller;
        if (res.destroyed) controller.abort(new Error('client closed the connection'));
      },
      onResponseStart: (controller, statusCode) => {
        x.responded = true;
        metrics.upstreamLatency(x.route.id, (performance.now() - sentAt) / 1000);
        metrics.request(x.route.id, statusCode);
        const scan = scanResponseHeaders(controller.rawHeaders);
        if (x.h2) {
          (res as Http2ServerResponse).writeHead(statusCode, headerObject(scan.headers));
        } else {
          const r = res as http.ServerResponse;
          if (scan.hasDate) r.sendDate = false;
          r.writeHead(statusCode, scan.headers);
        }
      },
      onResponseData: (controller, chunk) => {
        if (!(res as http.ServerResponse).write(chunk) && !drainWaiting) {
          drainWaiting = true;
          controller.pause();
          res.once('drain', () => {
            drainWaiting = false;
            controller.resume();
          });
        }
      },
      onResponseEnd: () => {
        res.end();
      },
      onResponseError: (_controller, error) => {
        if (x.responded) {
          res.destroy();
          return;
        }
        this.#upstreamFailed(x, attempt, backend, errorCode(error));
      },
    };
    const dispatch = (u: Undici) => {
      try {
        this.#pool(backend, u).dispatch(
          { path: x.path, method: x.method, headers: x.headers, body },
          handler,
        );
      } catch (error) {
        metrics.upstreamError();
        this.#fail(x, 502, `upstream request refused (${errorCode(error)})`);
      }
    };
    if (undici !== undefined) dispatch(undici);
    else
      loadUndici().then(dispatch, (error: unknown) => {
        metrics.upstreamError();
        this.#fail(x, 502, `upstream client unavailable (${errorCode(error)})`);
      });
  }

  #watchBodyIdle(x: Exchange): void {
    const timer = setTimeout(() => {
      this.#fail(x, 408, 'request body idle too long');
      x.controller?.abort(new Error('request body idle'));
      x.req.socket?.destroy();
    }, this.#options.limits.bodyIdleTimeoutMs);
    x.req.on('data', () => timer.refresh());
    x.req.once('end', () => clearTimeout(timer));
    x.res.once('close', () => clearTimeout(timer));
  }

  #fail(x: Exchange, status: number, reason: string): void {
    if (x.res.headersSent) {
      x.res.destroy();
      return;
    }
    this.#options.metrics.request(x.route.id, status);
    sendError(x.res, status, reason);
  }

  #reject(req: AnyRequest, res: AnyResponse, status: number, label: string, reason: string): void {
    this.#options.metrics.request(label, status);
    req.resume();
    sendError(res, status, reason);
  }
}
