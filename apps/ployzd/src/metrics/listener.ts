/**
 * ployzd's metrics listener: `GET /metrics` (Prometheus text) on `--metrics-listen`, loopback by
 * default. Nothing else is served there; the local API stays on the admin socket.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_PATHS } from '@ployz/protocol';
import { EXPOSITION_CONTENT_TYPE } from './registry.ts';

export class MetricsListener {
  readonly #server: Server;

  constructor(render: () => string) {
    this.#server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path !== ADMIN_PATHS.metrics) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path} here; try /metrics\n`);
      } else if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
      } else {
        response.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE }).end(render());
      }
    });
  }

  /** Resolves with `host:port` as bound (port 0 picks a free one). */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        const address = this.#server.address() as AddressInfo;
        resolve(
          address.family === 'IPv6'
            ? `[${address.address}]:${address.port}`
            : `${address.address}:${address.port}`,
        );
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
