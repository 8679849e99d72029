/**
 * The join listener: plain HTTP on the machine's LAN address (`--join-port`, default
 * DEFAULT_JOIN_PORT), one route, `POST /v1/join` (@ployz/protocol join.ts). Nothing a client
 * sends ends the process: each request is parsed and answered on its own, a bad one gets 400.
 * `requestJoin` is the joiner's client of it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  asPloyzError,
  httpStatusFor,
  JOIN_MAX_BODY,
  JOIN_PATH,
  type JoinAnswer,
  JoinReply,
  JoinRequest,
  readJson,
  sendJson,
} from '@ployz/protocol';

import { isErrorCode, PloyzError } from '@ployz/types';

export type JoinHandler = (request: JoinRequest) => Promise<JoinAnswer>;

async function answer(req: IncomingMessage, res: ServerResponse, handle: JoinHandler): Promise<void> {
  if (req.method !== 'POST' || req.url !== JOIN_PATH) {
    sendJson(res, 404, { error: { code: 'NOT_FOUND', message: `only POST ${JOIN_PATH} is served here` } });
    return;
  }
  try {
    const parsed = JoinRequest.safeParse(await readJson(req, JOIN_MAX_BODY));
    if (!parsed.success) {
      throw new PloyzError(
        'API_BAD_REQUEST',
        `the join request does not validate: ${parsed.error.issues[0]?.message}`,
      );
    }
    sendJson(res, 200, { result: await handle(parsed.data) });
  } catch (error) {
    const e = asPloyzError(error);
    sendJson(res, httpStatusFor(e), { error: e.toJSON() });
  }
}

export class JoinListener {
  readonly #server: Server;

  constructor(handle: JoinHandler, onError: (error: unknown) => void = () => {}) {
    this.#server = createServer((req, res) => {
      answer(req, res, handle).catch((error: unknown) => {
        onError(error);
        res.destroy();
      });
    });
    this.#server.requestTimeout = 30_000;
    this.#server.on('clientError', (_error, socket) => socket.destroy());
  }

  /** Resolves with the bound `host:port` (port 0 takes a free one). */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address() as AddressInfo;
        resolve(host.includes(':') ? `[${host}]:${address.port}` : `${host}:${address.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections();
      this.#server.close(() => resolve());
    });
  }
}

/** The joiner's call: the issuer's answer, or its error as a PloyzError (code kept). */
export async function requestJoin(
  join: string,
  request: JoinRequest,
  timeoutMs = 30_000,
): Promise<JoinAnswer> {
  let response: Response;
  try {
    response = await fetch(`http://${join}${JOIN_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new PloyzError(
      'DAEMON_UNREACHABLE',
      `the issuer's ployzd does not answer at ${join} (its join listener); check it runs and this machine reaches that address. Nothing was changed`,
      { cause: error, details: { join } },
    );
  }
  const reply = JoinReply.safeParse(await response.json().catch(() => null));
  if (!reply.success) {
    throw new PloyzError(
      'INTERNAL',
      `the issuer at ${join} answered ${response.status} without a join reply`,
    );
  }
  if ('error' in reply.data) {
    const { code, message, details } = reply.data.error;
    throw new PloyzError(
      isErrorCode(code) ? code : 'INTERNAL',
      message,
      details === undefined ? {} : { details },
    );
  }
  return reply.data.result;
}
