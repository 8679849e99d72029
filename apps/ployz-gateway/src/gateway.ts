import http from 'node:http';
import type http2 from 'node:http2';
import type { AddressInfo, Server as NetServer, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  createFollower,
  FileSnapshotFeed,
  type Follower,
  IncrementalRoutes,
  LazyStoreFeed,
  projectRoutes,
  type RouteTable,
} from '@ployz/routing';
import type { RoutingFeed } from '@ployz/types';
import type { Logger } from 'pino';
import type { AcmeFeed } from './acme.ts';
import { type AdminAnswer, type AdminSources, adminAnswer, createAdminServer } from './admin.ts';
import type { CertificateStore } from './certificates.ts';
import type { GatewayConfig } from './config.ts';
import { Http1Front } from './front-http1.ts';
import { exposedGc, HeapReturn } from './heap-return.ts';
import { GatewayMetrics } from './metrics.ts';
import { MachineHealth } from './proxy/machine-health.ts';
import { CONNECT_REFUSED, closingErrorResponse, type Proto, ReverseProxy } from './proxy.ts';

/** Probes in a row a machine misses before its backends are passed over (proxy/machine-health.ts). */
const MACHINE_PROBE_MISSES = 2;

export interface Gateway {
  readonly httpPort: number;
  readonly httpsPort: number | null;
  /** The admin listener's port; null in a worker (its primary serves admin, workers.ts). */
  readonly adminPort: number | null;
  /** This process's admin answer for `path` (what a worker sends its primary). */
  admin(path: string): AdminAnswer;
  readonly follower: Follower<RouteTable>;
  readonly proxy: ReverseProxy;
  readonly certificates: CertificateStore | null;
  /** ACME certificates and challenge answers fed by ployzd (`--acme-dir`), null without. */
  readonly acme: AcmeFeed | null;
  /** Stops accepting, waits for in-flight requests (up to the drain timeout), then closes. */
  close(): Promise<void>;
}

export interface GatewayDeps {
  logger: Logger;
  /** Overrides the feed chosen from config (tests). */
  feed?: RoutingFeed;
  version?: string;
  /** Set in a worker of a multi-worker gateway (workers.ts). */
  worker?: GatewayWorkerOptions;
}

export interface GatewayWorkerOptions {
  /**
   * Bind the serving ports with SO_REUSEPORT (each worker its own listening socket, the kernel
   * spreading connections over them); no admin listener.
   */
  reusePort: true;
  /**
   * A replacement worker binds only once its first table is loaded (or this long has passed),
   * so the kernel hands it no connection it would answer 503.
   */
  loadBeforeListenMs?: number;
}

type TlsSocket = TLSSocket & { alpnProtocol: string | false | null };

/** The serving ports' accept queue (the kernel caps it at net.core.somaxconn, 4096 by default). */
const LISTEN_BACKLOG = 4096;

function listen(
  server: http.Server | http2.Http2SecureServer,
  port: number,
  host: string,
  reusePort = false,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // `exclusive`: a cluster worker binds its own socket instead of asking its primary for one.
    // `backlog`: a burst of connects (1000 clients at once) would overflow node's default of 511, and
    // a client whose handshake ACK was dropped retransmits its request after 200 ms, 400 ms, ….
    const options = reusePort
      ? { port, host, backlog: LISTEN_BACKLOG, reusePort: true, exclusive: true }
      : { port, host, backlog: LISTEN_BACKLOG };
    server.listen(options, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: http.Server | http2.Http2SecureServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function clientErrorHandler(metrics: GatewayMetrics, maxHeaderBytes: number) {
  return (error: Error & { code?: string }, socket: Duplex) => {
    metrics.clientError();
    if (error.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason] =
      error.code === 'HPE_HEADER_OVERFLOW'
        ? requestLineOverflow(error, maxHeaderBytes)
          ? [414, 'request line too long']
          : [431, 'request headers too large']
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? [408, 'request not received in time']
          : error.code === 'HPE_INVALID_VERSION'
            ? [505, 'HTTP version not supported']
            : [400, 'malformed request'];
    closeWith(socket, status, reason);
  };
}

/** The head overflowed in its request line: a method, then no line end within the limit. */
function requestLineOverflow(error: Error & { rawPacket?: unknown }, maxHeaderBytes: number): boolean {
  const packet = error.rawPacket;
  if (!Buffer.isBuffer(packet) || !REQUEST_LINE_START.test(packet.toString('latin1', 0, 20))) return false;
  const eol = packet.indexOf('\n');
  return eol === -1 || eol >= maxHeaderBytes;
}
const REQUEST_LINE_START = /^[A-Z]+ /;

/** The gateway's own answer on a raw socket, then the connection closes. */
function closeWith(socket: Duplex, status: number, reason: string): void {
  socket.end(closingErrorResponse(status, reason));
  socket.destroy();
}

/** `connect` handler: the gateway is no forward proxy (405, never forwarded). */
function refuseConnect(metrics: GatewayMetrics) {
  return (_req: http.IncomingMessage, socket: Duplex) => {
    metrics.request('none', 405);
    socket.on('error', () => socket.destroy());
    closeWith(socket, 405, CONNECT_REFUSED);
  };
}

/**
 * Takes `event` ('connection', or 'secureConnection' for TLS) away from node's own listener on
 * `server` and returns that listener, to be called for the sockets the fast path hands off. The
 * server still listens, times out and closes as node made it; its sockets meet the fast path first.
 */
function takeOver(server: NetServer, event: 'connection' | 'secureConnection'): (socket: Socket) => void {
  const [nodeListener] = server.listeners(event);
  if (typeof nodeListener !== 'function') throw new Error(`node server has no ${event} listener`);
  server.removeAllListeners(event);
  return (socket) => nodeListener.call(server, socket);
}

/** The fast path (front-http1.ts) for one listener; `handOff` gives node a socket for good. */
function fastPath(
  proxy: ReverseProxy,
  metrics: GatewayMetrics,
  config: GatewayConfig,
  proto: Proto,
  handOff: (socket: Socket) => void,
): Http1Front {
  return new Http1Front({
    proxy,
    metrics,
    proto,
    limits: {
      maxHeaderBytes: config.maxHeaderBytes,
      keepAliveTimeoutMs: config.keepAliveTimeoutMs,
      writeStallMs: Math.max(config.requestTimeoutMs, config.upstreamTimeoutMs),
    },
    handOff,
  });
}

/** Composes feed → follower → proxy → listeners. Nothing here calls process.exit. */
export async function startGateway(config: GatewayConfig, deps: GatewayDeps): Promise<Gateway> {
  const log = deps.logger;
  const startedAt = Date.now();
  const metrics = new GatewayMetrics();
  const feed =
    deps.feed ??
    (config.snapshotFile !== undefined
      ? new FileSnapshotFeed(config.snapshotFile)
      : new LazyStoreFeed({
          servers: config.natsUrl,
          nkeySeed: config.natsNkeySeed,
          nkeySeedFile: config.natsNkeySeedFile,
          installation: config.installation,
          authority: config.authority,
          name: 'ployz-gateway',
          identity: 'gateway',
        }));

  let lastLoggedError = '';
  const follower = createFollower(feed, {
    project: projectRoutes,
    incremental: new IncrementalRoutes(),
    maxLagMs: config.maxLagMs,
    onError: (error, context) => {
      const message = `${context}: ${(error as Error).message}`;
      if (message !== lastLoggedError) log.warn({ context, err: error }, 'routing follower problem');
      lastLoggedError = message;
    },
  });
  let wasStale = true;
  follower.onUpdate((table, freshness) => {
    if (wasStale && !freshness.stale)
      log.info({ seq: table.seq, routes: table.routeCount }, 'routing table fresh');
    wasStale = freshness.stale;
    lastLoggedError = '';
    proxy.prunePools(table);
    health.update(table);
    for (const conflict of table.conflicts)
      log.warn({ conflict }, 'two services claim the same host and path');
  });

  const health = new MachineHealth({
    self: config.machineId,
    intervalMs: config.machineProbeIntervalMs,
    timeoutMs: config.machineProbeTimeoutMs,
    misses: MACHINE_PROBE_MISSES,
    onChange: (machine, down, backends) => {
      if (down) {
        log.warn(
          { machine, backends: backends.length },
          'machine not answering: its backends are passed over',
        );
        proxy.dropBackends(backends);
      } else log.info({ machine }, 'machine answers again');
    },
  });
  health.start();
  let acme: AcmeFeed | null = null;
  const proxy = new ReverseProxy({
    ...(config.acmeDir === undefined ? {} : { edge: { challenge: (token) => acme?.challenge(token) } }),
    table: () => follower.current(),
    metrics,
    machinesDown: health.down,
    limits: {
      bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
    },
  });

  const serverOptions: http.ServerOptions = {
    maxHeaderSize: config.maxHeaderBytes,
    headersTimeout: config.headersTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1000,
  };
  const httpServer = http.createServer(serverOptions, (req, res) => proxy.handle(req, res, 'http'));
  const onUpgrade = (proto: Proto) => (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
    proxy.upgrade(req, socket, head, proto);
  httpServer.on('upgrade', onUpgrade('http'));
  httpServer.on('clientError', clientErrorHandler(metrics, config.maxHeaderBytes));
  httpServer.on('connect', refuseConnect(metrics));
  const front = fastPath(proxy, metrics, config, 'http', takeOver(httpServer, 'connection'));
  httpServer.on('connection', (socket: Socket) => front.accept(socket));
  let tlsFront: Http1Front | null = null;

  const headerDeadlines = new WeakMap<Socket, NodeJS.Timeout>();
  const disarmHeaders = (socket: Socket) => {
    const timer = headerDeadlines.get(socket);
    if (timer !== undefined) clearTimeout(timer);
    headerDeadlines.delete(socket);
  };
  const armHeaders = (socket: Socket) => {
    disarmHeaders(socket);
    if (socket.destroyed) return;
    const timer = setTimeout(() => {
      metrics.clientError();
      socket.destroy();
    }, config.headersTimeoutMs);
    timer.unref();
    headerDeadlines.set(socket, timer);
  };

  let certificates: CertificateStore | null = null;
  let httpsServer: http2.Http2SecureServer | null = null;
  const sessions = new Set<http2.ServerHttp2Session>();
  if (config.certDir !== undefined || config.acmeDir !== undefined) {
    // TLS, HTTP/2 and the certificate store load only when HTTPS is on (RSS of a plain gateway).
    const [{ CertificateStore }, { AcmeFeed, sniOver }, { createSecureServer }] = await Promise.all([
      import('./certificates.ts'),
      import('./acme.ts'),
      import('node:http2'),
    ]);
    const stores: CertificateStore[] = [];
    if (config.certDir !== undefined) {
      certificates = new CertificateStore(config.certDir, (load) =>
        log.info({ loaded: load.loaded, failed: load.failed }, 'certificates reloaded'),
      );
      const load = await certificates.load();
      log.info({ dir: config.certDir, loaded: load.loaded, failed: load.failed }, 'certificates loaded');
      certificates.watch();
      stores.push(certificates);
    }
    if (config.acmeDir !== undefined) {
      const feed = new AcmeFeed(config.acmeDir, (load) =>
        log.info({ loaded: load.loaded, failed: load.failed }, 'acme certificates reloaded'),
      );
      const load = await feed.load();
      log.info({ dir: config.acmeDir, loaded: load.loaded, failed: load.failed }, 'acme certificates loaded');
      feed.watch();
      stores.push(feed.certificates);
      acme = feed;
    }
    httpsServer = createSecureServer(
      {
        allowHTTP1: true,
        handshakeTimeout: config.headersTimeoutMs,
        SNICallback: sniOver(stores),
        maxSessionMemory: 16,
        settings: { maxHeaderListSize: config.maxHeaderBytes },
        maxSendHeaderBlockLength: config.maxHeaderBytes * 4,
      },
      (req, res) => {
        if (req.httpVersionMajor === 1) {
          // HTTP/1.1 over TLS: node's headers timeout does not apply to the http2 server's
          // HTTP/1 fallback, so the gateway keeps its own per-connection headers deadline.
          const socket = req.socket as Socket;
          disarmHeaders(socket);
          res.once('finish', () => armHeaders(socket));
        }
        proxy.handle(req, res, 'https');
      },
    );
    httpsServer.on('upgrade', onUpgrade('https'));
    // `connect` comes from the HTTP/1 fallback (a raw socket: refused like node:http's) and, once
    // anyone listens, for HTTP/2 CONNECT streams too (a response object: the proxy's own 405).
    const refuseH1Connect = refuseConnect(metrics);
    httpsServer.on('connect', (req: http.IncomingMessage | http2.Http2ServerRequest, target: unknown) => {
      if (req.httpVersionMajor === 2) {
        proxy.handle(req as http2.Http2ServerRequest, target as http2.Http2ServerResponse, 'https');
      } else refuseH1Connect(req as http.IncomingMessage, target as Duplex);
    });
    httpsServer.on('session', (session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
    });
    httpsServer.on('tlsClientError', () => metrics.clientError());
    httpsServer.on('sessionError', () => metrics.clientError());
    // HTTP/2 goes to node:http2; HTTP/1.1 (by ALPN, or none) meets the fast path first, and what
    // it hands off takes node:http2's HTTP/1 fallback.
    const nodeTls = takeOver(httpsServer, 'secureConnection');
    // Slow TLS clients cannot hold sockets node serves: a handshake deadline (above), then an
    // idle deadline and, for HTTP/1.1, a headers deadline per request.
    const idleMs = Math.max(config.requestTimeoutMs, config.upstreamTimeoutMs);
    const toNode = (socket: TlsSocket) => {
      socket.setTimeout(idleMs, () => socket.destroy());
      if (socket.alpnProtocol !== 'h2') armHeaders(socket);
      socket.once('close', () => disarmHeaders(socket));
      nodeTls(socket);
    };
    const h1 = fastPath(proxy, metrics, config, 'https', (socket) => toNode(socket as TlsSocket));
    tlsFront = h1;
    httpsServer.on('secureConnection', (socket: TlsSocket) => {
      if (socket.alpnProtocol === 'h2') toNode(socket);
      else h1.accept(socket);
    });
  }

  const adminSources: AdminSources = {
    freshness: () => follower.freshness(),
    table: () => follower.current(),
    metrics,
    inFlight: () => proxy.inFlight,
    pools: () => proxy.poolStats(),
    certificates: () => [
      ...new Set([...(certificates?.hostnames() ?? []), ...(acme?.certificates.hostnames() ?? [])]),
    ],
    startedAt,
    version: deps.version ?? '0.0.0',
  };
  const worker = deps.worker;
  const admin = worker === undefined ? createAdminServer(adminSources) : null;

  // After a burst, the heap it grew goes back (heap-return.ts; on when node runs with --expose-gc).
  const heapReturn = new HeapReturn({
    gc: exposedGc(),
    load: () => ({
      inFlight: proxy.inFlight,
      connections: front.connections + (tlsFront?.connections ?? 0),
    }),
    onReturn: (before, after) =>
      log.info(
        { heapTotalMb: mb(before.total), heapTotalAfterMb: mb(after.total), heapUsedAfterMb: mb(after.used) },
        'burst over: heap returned',
      ),
  });
  heapReturn.start();

  follower.start();
  if (worker?.loadBeforeListenMs !== undefined) await firstLoad(follower, worker.loadBeforeListenMs);
  const adminPort = admin === null ? null : await listen(admin, config.adminPort, config.adminHost);
  const reusePort = worker !== undefined;
  const httpPort = await listen(httpServer, config.httpPort, config.listenHost, reusePort);
  const httpsPort =
    httpsServer === null ? null : await listen(httpsServer, config.httpsPort, config.listenHost, reusePort);
  log.info({ httpPort, httpsPort, adminPort, listenHost: config.listenHost }, 'gateway listening');

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      log.info({ inFlight: proxy.inFlight }, 'draining');
      heapReturn.stop();
      const closed = [closeServer(httpServer), ...(httpsServer ? [closeServer(httpsServer)] : [])];
      httpServer.closeIdleConnections();
      front.closeIdle();
      tlsFront?.closeIdle();
      for (const session of sessions) session.close();
      const deadline = Date.now() + config.drainTimeoutMs;
      // Idle fast-path connections linger for a sweep (front-http1.ts closeWhenIdle).
      const open = () => proxy.inFlight > 0 || front.connections > 0 || (tlsFront?.connections ?? 0) > 0;
      while (open() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      if (proxy.inFlight > 0)
        log.warn({ inFlight: proxy.inFlight }, 'drain timeout: closing remaining requests');
      httpServer.closeAllConnections();
      front.destroyAll();
      tlsFront?.destroyAll();
      proxy.closeTunnels();
      for (const session of sessions) session.destroy();
      await Promise.all(closed);
      health.stop();
      await follower.stop();
      if (feed instanceof LazyStoreFeed) await feed.close();
      certificates?.close();
      acme?.close();
      await proxy.close();
      if (admin !== null) {
        admin.closeAllConnections();
        await closeServer(admin);
      }
      log.info('gateway stopped');
    })();
    return closing;
  };

  return {
    httpPort,
    httpsPort,
    adminPort,
    admin: (path) => adminAnswer(adminSources, path),
    follower,
    proxy,
    certificates,
    acme,
    close,
  };
}

function mb(bytes: number): number {
  return Math.round(bytes / 1048576);
}

/** Resolves once the follower has a table, or after `ms`. */
function firstLoad(follower: Follower<RouteTable>, ms: number): Promise<void> {
  if (follower.current() !== undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      off();
      resolve();
    };
    const timer = setTimeout(done, ms);
    const off = follower.onUpdate(done);
  });
}
