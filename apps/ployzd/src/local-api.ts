/**
 * The local API: HTTP/JSON over a unix socket (mode 0660). Routes are a declarative table
 * (`METHOD /path` → handler); errors go out as `{ error: { code, message, details } }` with an
 * HTTP status from the error's kind. A stand-in for @ployz/protocol's server helper, same wire shape.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { ERROR_CODES, isPloyzError, PloyzError } from '@ployz/types';

export type ApiHandler = (body: unknown, query: URLSearchParams) => Promise<unknown> | unknown;

const STATUS_BY_KIND = { user: 400, conflict: 409, transient: 503, internal: 500 } as const;

export function httpStatusFor(error: PloyzError): number {
  switch (error.code) {
    case 'NOT_FOUND':
      return 404;
    case 'NOT_INITIALISED':
    case 'ALREADY_INITIALISED':
      return 409;
    default:
      return STATUS_BY_KIND[ERROR_CODES[error.code].kind];
  }
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return null;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new PloyzError('API_BAD_REQUEST', 'the request body is not JSON');
  }
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

/**
 * Long operations: one JSON value per line (NDJSON), flushed as produced. The producer's last
 * item says how it ended; an exception mid-stream becomes a final `{ type: 'error', error }` line.
 */
async function streamNdjson(res: ServerResponse, items: AsyncIterable<unknown>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  try {
    for await (const item of items) res.write(`${JSON.stringify(item)}\n`);
  } catch (error) {
    const e = isPloyzError(error) ? error.toJSON() : { code: 'INTERNAL', message: String(error) };
    res.write(`${JSON.stringify({ type: 'error', error: e })}\n`);
  }
  res.end();
}

/** True when something answers on the socket (another live daemon). */
export function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class LocalApi {
  readonly #routes = new Map<string, ApiHandler>();
  #server: Server | null = null;

  route(method: 'GET' | 'POST' | 'DELETE', path: string, handler: ApiHandler): void {
    const key = `${method} ${path}`;
    if (this.#routes.has(key)) throw new PloyzError('INTERNAL', `route ${key} registered twice`);
    this.#routes.set(key, handler);
  }

  async listen(socketPath: string): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true });
    if (await socketAlive(socketPath)) {
      throw new PloyzError(
        'CONFIG_INVALID',
        `another ployzd already answers on ${socketPath}; stop it first`,
      );
    }
    await rm(socketPath, { force: true });
    const server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    await chmod(socketPath, 0o660);
    this.#server = server;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://ployzd');
    const send = (status: number, payload: unknown) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    try {
      const handler = this.#routes.get(`${req.method ?? 'GET'} ${url.pathname}`);
      if (!handler)
        throw new PloyzError(
          'NOT_FOUND',
          `no route ${req.method} ${url.pathname}; is ployzctl newer than ployzd?`,
        );
      const body = await readBody(req);
      const result = await handler(body, url.searchParams);
      if (isAsyncIterable(result)) {
        await streamNdjson(res, result);
        return;
      }
      send(200, { result });
    } catch (error) {
      const e = isPloyzError(error)
        ? error
        : new PloyzError('INTERNAL', error instanceof Error ? error.message : String(error), {
            cause: error,
          });
      send(httpStatusFor(e), { error: e.toJSON() });
    }
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
  }
}
