/**
 * The CLI's client of the daemon's local API: HTTP/JSON over the unix socket. Responses are
 * `{ result }` or `{ error: { code, message, details } }`; a missing or refused socket is
 * DAEMON_UNREACHABLE with a hint to start ployzd.
 */
import { isErrorCode, PloyzError } from '@ployz/types';
import { Client } from 'undici';

export const DEFAULT_SOCKET = '/run/ployz/ployzd.sock';

export class DaemonClient {
  readonly socketPath: string;
  readonly #client: Client;

  constructor(socketPath: string) {
    this.socketPath = socketPath;
    this.#client = new Client('http://ployzd', { socketPath, connectTimeout: 2000 });
  }

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let status: number;
    let payload: unknown;
    try {
      const res = await this.#client.request({
        method,
        path,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        headersTimeout: 120_000,
        bodyTimeout: 120_000,
      });
      status = res.statusCode;
      payload = await res.body.json();
    } catch (cause) {
      const code = (cause as { code?: string }).code ?? '';
      throw new PloyzError(
        'DAEMON_UNREACHABLE',
        `ployzd does not answer on ${this.socketPath} (${code || String(cause)}); start it with: sudo ployzd run`,
        { cause },
      );
    } finally {
      await this.#client.close().catch(() => {});
    }
    if (typeof payload === 'object' && payload !== null && 'error' in payload) {
      const e = (
        payload as { error: { code?: unknown; message?: unknown; details?: Record<string, unknown> } }
      ).error;
      throw new PloyzError(isErrorCode(e.code) ? e.code : 'INTERNAL', String(e.message ?? `HTTP ${status}`), {
        ...(e.details ? { details: e.details } : {}),
      });
    }
    if (typeof payload === 'object' && payload !== null && 'result' in payload) {
      return (payload as { result: T }).result;
    }
    throw new PloyzError('INTERNAL', `ployzd answered ${method} ${path} with HTTP ${status} and no result`);
  }
}
