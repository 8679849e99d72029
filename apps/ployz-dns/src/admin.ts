/**
 * Admin listener: `/_ployz/health` (200 once a view is served, 503 before), `/_ployz/status`
 * (JSON freshness and counters) and `/metrics` (Prometheus text).
 */

import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PATHS, type AdminListener, listenAdmin } from '@ployz/protocol';

export interface AdminHandlers {
  health(): { ok: boolean; reason: string | null };
  status(): unknown;
  metrics(): string;
}

export class AdminServer {
  readonly #handle: RequestListener;
  #listener: AdminListener | null = null;

  constructor(handlers: AdminHandlers) {
    this.#handle = (request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      switch (path) {
        case ADMIN_PATHS.health: {
          const health = handlers.health();
          sendJson(response, health.ok ? 200 : 503, health);
          return;
        }
        case ADMIN_PATHS.status:
          sendJson(response, 200, handlers.status());
          return;
        case ADMIN_PATHS.metrics:
          response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(handlers.metrics());
          return;
        default:
          sendJson(response, 404, { code: 'NOT_FOUND', message: `no admin endpoint ${path}` });
      }
    };
  }

  /**
   * With `altPort`, a taken port (the instance this one replaces holds it) falls back to altPort
   * until it is free (docs/adr/0014-replace-beside.md).
   */
  async listen(host: string, port: number, altPort: number | null = null): Promise<AddressInfo> {
    this.#listener = await listenAdmin(() => createServer(this.#handle), { host, port, altPort });
    return { address: host, family: host.includes(':') ? 'IPv6' : 'IPv4', port: this.#listener.port };
  }

  async close(): Promise<void> {
    await this.#listener?.close();
  }
}

function sendJson(response: import('node:http').ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}
