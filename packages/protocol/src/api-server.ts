/**
 * The local API server ployzd mounts: node:http on a unix socket, the routes of `api`,
 * zod-validated inputs and outputs, errors as `{ error: { code, message, details } }` with an
 * HTTP status from the error kind. Streamed routes answer `application/x-ndjson`: one
 * `{ "progress": … }` line per `emit`, then `{ "result": … }` or `{ "error": … }`.
 *
 * The socket is created with mode 0660 (owner root, group configurable): only root and the
 * group may talk to the daemon. A stale socket file is replaced; a live one is an error.
 */
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { ERROR_CODES, isPloyzError, PloyzError } from '@ployz/types';
import { z } from 'zod';
import {
  type Api,
  api,
  parseInput,
  parseOutput,
  type RouteName,
  type RouteSpec,
  type RouteTable,
} from './api-routes.ts';
import { requestInvalid } from './error-body.ts';
import {
  encodeFrame,
  FRAME,
  TUNNEL_INPUT_HEADER,
  TUNNEL_PROTOCOL,
  type TunnelName,
  type Tunnels,
  tunnels,
} from './exec-tunnel.ts';
import type { Sendable } from './plain.ts';

export interface HandlerContext<P> {
  /** Sends one progress line (streamed routes only; a no-op elsewhere). */
  emit(progress: P): void;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** The context of route `N`'s handler: `emit` takes that route's progress line. */
export type RouteContext<T extends RouteTable, N extends keyof T> = HandlerContext<
  T[N]['progress'] extends z.ZodType ? Sendable<z.input<T[N]['progress']>> : never
>;

export type RouteHandler<T extends RouteTable, N extends keyof T> = (
  input: z.output<T[N]['input']>,
  ctx: RouteContext<T, N>,
) => Promise<Sendable<z.input<T[N]['output']>>> | Sendable<z.input<T[N]['output']>>;

export interface TunnelContext {
  /** Answers `101` and hands over the connection; before it, a throw is an ordinary error answer. */
  accept(): Duplex;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

export type TunnelHandler<N extends TunnelName> = (
  input: z.output<Tunnels[N]['input']>,
  ctx: TunnelContext,
) => Promise<void>;

const STATUS_BY_KIND = { user: 400, conflict: 409, transient: 503, internal: 500 } as const;

export function httpStatusFor(error: PloyzError): number {
  switch (error.code) {
    case 'NOT_FOUND':
      return 404;
    case 'PERMISSION_DENIED':
      return 403;
    case 'NOT_INITIALISED':
    case 'ALREADY_INITIALISED':
      return 409;
    default:
      return STATUS_BY_KIND[ERROR_CODES[error.code].kind];
  }
}

/** A thrown value as the PloyzError to answer with (anything else is INTERNAL). */
export function asPloyzError(err: unknown): PloyzError {
  if (isPloyzError(err)) return err;
  return new PloyzError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/** True when something answers on the socket path (another live daemon). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ListenOptions {
  /** File mode of the socket; default 0o660. */
  mode?: number;
  /** Group allowed to use the socket (numeric gid); default: the process's group. */
  gid?: number;
}

/**
 * A registered handler bound to its route's schemas: it validates the input, runs the handler
 * and validates its answer, so the server itself only deals in `unknown`.
 */
type BoundHandler = (raw: unknown, ctx: HandlerContext<unknown>) => Promise<unknown>;

const MAX_BODY = 2_000_000;

/** Binds `handler` to its route's schemas: validates the input, runs, validates the answer. */
function bindHandler<S extends RouteSpec, C>(
  name: string,
  spec: S,
  handler: (input: z.output<S['input']>, ctx: C) => unknown,
): (raw: unknown, ctx: C) => Promise<z.output<S['output']>> {
  return async (raw, ctx) => {
    const parsed = parseInput(spec, raw ?? {});
    if (!parsed.success) {
      throw requestInvalid(name, parsed.error.issues);
    }
    const out = parseOutput(spec, await handler(parsed.data, ctx));
    if (!out.success) {
      throw new PloyzError('INTERNAL', `ployzd produced an invalid ${name} response`, {
        details: { route: name, issues: out.error.issues },
      });
    }
    return out.data;
  };
}

/** The local API server of the route table `api` (api-routes.ts). */
export class LocalApiServer {
  readonly routes: Api = api;
  readonly #handlers = new Map<string, BoundHandler>();
  readonly #byPath = new Map<string, { name: string; spec: RouteSpec }>();
  readonly #tunnels = new Map<string, (input: unknown, ctx: TunnelContext) => Promise<void>>();
  #server: Server | null = null;
  #socketPath: string | null = null;

  constructor() {
    for (const [name, spec] of Object.entries(this.routes)) {
      this.#byPath.set(`${spec.method} ${spec.path}`, { name, spec });
    }
  }

  implement<N extends RouteName>(name: N, handler: RouteHandler<Api, N>): this {
    if (!Object.hasOwn(this.routes, name)) throw new PloyzError('INTERNAL', `no route named ${name}`);
    if (this.#handlers.has(name)) throw new PloyzError('INTERNAL', `route ${name} implemented twice`);
    this.#handlers.set(name, bindHandler<Api[N], RouteContext<Api, N>>(name, this.routes[name], handler));
    return this;
  }

  implementTunnel<N extends TunnelName>(name: N, handler: TunnelHandler<N>): this {
    if (this.#tunnels.has(tunnels[name].path))
      throw new PloyzError('INTERNAL', `tunnel ${name} implemented twice`);
    this.#tunnels.set(tunnels[name].path, async (raw, ctx) => {
      const parsed = z.safeParse<Tunnels[N]['input']>(tunnels[name].input, raw);
      if (!parsed.success) {
        throw requestInvalid(name, parsed.error.issues);
      }
      await handler(parsed.data, ctx);
    });
    return this;
  }

  /** Route names without a handler yet (ployzd can log them at start). */
  missing(): string[] {
    return Object.keys(this.routes).filter((n) => !this.#handlers.has(n));
  }

  /** The request listener, for mounting on another server or testing without a socket. */
  readonly listener = (req: IncomingMessage, res: ServerResponse): void => {
    void this.#handle(req, res);
  };

  async listen(socketPath: string, options: ListenOptions = {}): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
    if (await socketAnswers(socketPath)) {
      throw new PloyzError(
        'CONFIG_INVALID',
        `another ployzd already answers on ${socketPath}; stop it first`,
        {
          details: { socket: socketPath },
        },
      );
    }
    await rm(socketPath, { force: true });
    const server = createServer(this.listener);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.#upgrade(req, socket, head);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    await chmod(socketPath, options.mode ?? 0o660);
    if (options.gid !== undefined) await chown(socketPath, process.getuid?.() ?? 0, options.gid);
    this.#server = server;
    this.#socketPath = socketPath;
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
    }
    if (this.#socketPath) await rm(this.#socketPath, { force: true });
    this.#socketPath = null;
  }

  /** A tunnel request: validated input, then the handler; errors as a JSON answer or a last frame. */
  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const ac = new AbortController();
    socket.once('close', () => ac.abort());
    socket.on('error', () => ac.abort());
    let accepted = false;
    try {
      const url = new URL(req.url ?? '/', 'http://ployzd');
      const handler = this.#tunnels.get(url.pathname);
      if (!handler || req.headers.upgrade !== TUNNEL_PROTOCOL)
        throw new PloyzError('NOT_FOUND', `no tunnel ${url.pathname}; is ployzctl newer than ployzd?`);
      const header = req.headers[TUNNEL_INPUT_HEADER];
      let raw: unknown;
      try {
        raw = JSON.parse(decodeURIComponent(String(header ?? '{}')));
      } catch {
        throw new PloyzError('API_BAD_REQUEST', `the ${TUNNEL_INPUT_HEADER} header is not JSON`);
      }
      await handler(raw, {
        signal: ac.signal,
        accept: () => {
          if (accepted) return socket;
          accepted = true;
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${TUNNEL_PROTOCOL}\r\nConnection: Upgrade\r\n\r\n`,
          );
          if (head.length > 0) socket.unshift(head);
          return socket;
        },
      });
      if (!socket.destroyed) socket.end();
    } catch (err) {
      const e = asPloyzError(err);
      if (socket.destroyed) return;
      if (accepted) {
        socket.end(encodeFrame(FRAME.error, JSON.stringify(e.toJSON())));
        return;
      }
      const status = httpStatusFor(e);
      const text = JSON.stringify({ error: e.toJSON() });
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
      );
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ployzd');
    const ac = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) ac.abort();
    });
    let streaming = false;
    try {
      const found = this.#byPath.get(`${req.method ?? 'GET'} ${url.pathname}`);
      if (!found) {
        throw new PloyzError(
          'NOT_FOUND',
          `no route ${req.method} ${url.pathname}; is ployzctl newer than ployzd?`,
        );
      }
      const { name, spec } = found;
      const handler = this.#handlers.get(name);
      if (!handler) throw new PloyzError('NOT_FOUND', `ployzd does not implement ${name} (${spec.path}) yet`);
      const raw = spec.method === 'GET' ? Object.fromEntries(url.searchParams) : await readJson(req);
      const progress = spec.progress;
      const emit = (p: unknown) => {
        if (!progress || ac.signal.aborted) return;
        const checked = progress.safeParse(p);
        if (!checked.success) return; // a malformed progress line is dropped, never sent
        if (!streaming) {
          streaming = true;
          res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        }
        res.write(`${JSON.stringify({ progress: checked.data })}\n`);
      };
      const result = await handler(raw, { emit, signal: ac.signal });
      if (progress) {
        if (!streaming)
          res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        res.end(`${JSON.stringify({ result })}\n`);
      } else {
        sendJson(res, 200, { result });
      }
    } catch (err) {
      const e = asPloyzError(err);
      if (streaming) {
        res.end(`${JSON.stringify({ error: e.toJSON() })}\n`);
      } else if (!res.headersSent) {
        sendJson(res, httpStatusFor(e), { error: e.toJSON() });
      } else {
        res.end();
      }
    }
  }
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** The request body as JSON (null when empty); API_BAD_REQUEST above `maxBytes` or when not JSON. */
export async function readJson(req: IncomingMessage, maxBytes: number = MAX_BODY): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes)
      throw new PloyzError('API_BAD_REQUEST', `the request body exceeds ${maxBytes} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return null;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new PloyzError('API_BAD_REQUEST', 'the request body is not JSON');
  }
}
