/**
 * Admin listener: `/_ployz/health` (200 once a view is served, 503 before), `/_ployz/status`
 * (JSON freshness and counters) and `/metrics` (Prometheus text).
 */

import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PATHS } from '@ployz/protocol';

export interface AdminHandlers {
  health(): { ok: boolean; reason: string | null };
  status(): unknown;
  metrics(): string;
}

export class AdminServer {
  readonly #server: Server;

  constructor(handlers: AdminHandlers) {
    this.#server = createServer((request, response) => {
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
    });
  }

  async listen(host: string, port: number): Promise<AddressInfo> {
    this.#server.listen(port, host);
    await once(this.#server, 'listening');
    return this.#server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

function sendJson(response: import('node:http').ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
}
