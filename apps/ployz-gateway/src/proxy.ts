import http from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { type Backend, matchRoute, normalizeRequestHost, type Route, type RouteTable } from '@ployz/routing';
import { headerObject, scanRequestHeaders, scanResponseHeaders } from './forwarded-headers.ts';
import type { GatewayMetrics } from './metrics.ts';

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
  /** Keep-alive pool for upstream connections. */
  agent?: http.Agent;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Errors that mean "the request never reached the backend". */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNTIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
]);
/** A reused keep-alive socket the backend closed just before we wrote. */
const STALE_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE']);
const DOWN_FOR_MS = 2000;
const NO_ROUTE = 'none';

class ConnectTimeoutError extends Error {
  readonly code = 'ECONNTIMEOUT';
}

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
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
  upstream: http.ClientRequest | undefined;
}

/**
 * The reverse proxy: routes a request by host and path through the current table, picks a
 * backend round robin, forwards over a keep-alive pool and streams the answer back. It never
 * throws into the server: every failure becomes a short 4xx/5xx naming the reason.
 */
export class ReverseProxy {
  readonly #options: ProxyOptions;
  readonly #agent: http.Agent;
  readonly #roundRobin = new Map<string, number>();
  readonly #downUntil = new Map<string, number>();
  readonly #tunnels = new Set<Duplex>();
  #inFlight = 0;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#agent =
      options.agent ??
      new http.Agent({
        keepAlive: true,
        keepAliveMsecs: 1000,
        maxSockets: 512,
        maxFreeSockets: 256,
        scheduling: 'lifo',
      });
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

  get agent(): http.Agent {
    return this.#agent;
  }

  /** `request` handler for node:http and node:http2 (compat API) servers. */
  handle(req: AnyRequest, res: AnyResponse, proto: Proto): void {
    this.#inFlight += 1;
    res.once('close', () => {
      this.#inFlight -= 1;
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
    const host = normalizeRequestHost(hostHeader);
    const route = matchRoute(table, host, path);
    if (route === undefined) {
      this.#reject(req, res, 404, NO_ROUTE, 'no route for this host and path');
      return;
    }
    if (route.backends.length === 0) {
      this.#reject(req, res, 503, route.id, `no routable backend for ${route.namespace}/${route.service}`);
      return;
    }
    const method = req.method ?? 'GET';
    const exchange: Exchange = {
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
      upstream: undefined,
    };
    res.once('close', () => {
      if (!exchange.responded || !res.writableFinished) exchange.upstream?.destroy();
    });
    this.#forward(exchange, 0);
    if (scan.hasBody) this.#watchBodyIdle(exchange);
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
      const body = `${status} ${reason}\n`;
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

  #forward(x: Exchange, attempt: number): void {
    const backends = x.route.backends;
    const backend = backends[(x.start + attempt) % backends.length] as Backend;
    const sentAt = performance.now();
    const upstream = http.request({
      host: backend.host,
      port: backend.port,
      method: x.method,
      path: x.path,
      headers: x.headers,
      setHost: false,
      agent: this.#agent,
    });
    x.upstream = upstream;
    upstream.setTimeout(this.#options.limits.upstreamTimeoutMs);
    upstream.once('socket', (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(
        () => upstream.destroy(new ConnectTimeoutError('connect timeout')),
        this.#options.limits.connectTimeoutMs,
      );
      socket.once('connect', () => clearTimeout(timer));
      socket.once('close', () => clearTimeout(timer));
    });
    upstream.once('timeout', () => {
      upstream.destroy();
      this.#options.metrics.upstreamError();
      this.#fail(x, 504, 'upstream timed out');
    });
    upstream.once('response', (upRes) => {
      x.responded = true;
      const metrics = this.#options.metrics;
      metrics.upstreamLatency(x.route.id, (performance.now() - sentAt) / 1000);
      const status = upRes.statusCode ?? 502;
      metrics.request(x.route.id, status);
      const scan = scanResponseHeaders(upRes.rawHeaders);
      const res = x.res;
      if (x.h2) {
        (res as Http2ServerResponse).writeHead(status, headerObject(scan.headers));
      } else {
        const r = res as http.ServerResponse;
        if (scan.hasDate) r.sendDate = false;
        r.writeHead(status, scan.headers);
      }
      upRes.on('error', () => res.destroy());
      upRes.pipe(res as NodeJS.WritableStream);
    });
    upstream.on('error', (error) => {
      if (x.responded) {
        x.res.destroy();
        return;
      }
      const code = errorCode(error);
      const connectFailed =
        CONNECT_ERRORS.has(code) || (STALE_SOCKET_ERRORS.has(code) && upstream.reusedSocket === true);
      if (connectFailed && CONNECT_ERRORS.has(code))
        this.#downUntil.set(backend.key, Date.now() + DOWN_FOR_MS);
      if (
        connectFailed &&
        x.retryable &&
        attempt + 1 < Math.max(backends.length, 2) &&
        !x.res.headersSent &&
        !x.res.destroyed
      ) {
        this.#options.metrics.retry();
        this.#forward(x, attempt + 1);
        return;
      }
      if (x.res.headersSent || x.res.destroyed) return;
      this.#options.metrics.upstreamError();
      this.#fail(x, 502, `upstream ${connectFailed ? 'connect ' : ''}failed (${code})`);
    });
    if (x.retryable) {
      upstream.end();
      x.req.resume();
    } else {
      x.req.pipe(upstream);
    }
  }

  #watchBodyIdle(x: Exchange): void {
    const timer = setTimeout(() => {
      x.upstream?.destroy();
      this.#fail(x, 408, 'request body idle too long');
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
    this.#send(x.res, status, reason);
  }

  #reject(req: AnyRequest, res: AnyResponse, status: number, label: string, reason: string): void {
    this.#options.metrics.request(label, status);
    req.resume();
    this.#send(res, status, reason);
  }

  #send(res: AnyResponse, status: number, reason: string): void {
    if (res.destroyed) return;
    const body = `${status} ${reason}\n`;
    const headers = {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      'x-ployz-gateway': 'error',
    };
    (res as http.ServerResponse).writeHead(status, headers);
    res.end(body);
  }
}
