import http from 'node:http';
import { ADMIN_PATHS } from '@ployz/protocol';
import type { Freshness, RouteTable } from '@ployz/routing';
import type { GatewayMetrics } from './metrics.ts';

export interface AdminSources {
  freshness(): Freshness;
  table(): RouteTable | undefined;
  metrics: GatewayMetrics;
  inFlight(): number;
  certificates(): string[];
  startedAt: number;
  version: string;
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * The admin listener (never the public port): `/_ployz/health` is 200 only when the table is
 * loaded and fresh, else 503 with the reason; `/_ployz/status` says how fresh and how big the
 * table is; `/metrics` is Prometheus text.
 */
export function createAdminServer(sources: AdminSources): http.Server {
  return http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'use GET' });
    const freshness = sources.freshness();
    const table = sources.table();
    switch (path) {
      case ADMIN_PATHS.health:
        return json(res, freshness.stale ? 503 : 200, {
          status: freshness.stale ? 'stale' : 'ok',
          reason: freshness.reason,
          applied_seq: freshness.appliedSeq,
          lag: freshness.lag,
        });
      case ADMIN_PATHS.status:
        return json(res, 200, {
          version: sources.version,
          uptime_s: Math.round((Date.now() - sources.startedAt) / 1000),
          loaded: freshness.loaded,
          stale: freshness.stale,
          reason: freshness.reason,
          applied_seq: freshness.appliedSeq,
          stream_seq: freshness.streamSeq,
          lag: freshness.lag,
          last_rebuild_at: iso(freshness.lastSuccessAt),
          last_rebuild_ms: freshness.lastRebuildMs,
          rebuilds: freshness.rebuilds,
          full_rebuilds: freshness.fullRebuilds,
          rebuild_failures: freshness.rebuildFailures,
          resyncs: freshness.resyncs,
          route_count: table?.routeCount ?? 0,
          backend_count: table?.backendCount ?? 0,
          conflicts: table?.conflicts ?? [],
          in_flight: sources.inFlight(),
          certificates: sources.certificates(),
          memory_mb: (() => {
            const m = process.memoryUsage();
            return { rss: Math.round(m.rss / 1048576), heap_used: Math.round(m.heapUsed / 1048576) };
          })(),
        });
      case ADMIN_PATHS.metrics: {
        const text = sources.metrics.render(freshness, {
          routes: table?.routeCount ?? 0,
          backends: table?.backendCount ?? 0,
          inFlight: sources.inFlight(),
        });
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(text);
        return;
      }
      default:
        return json(res, 404, {
          error: 'unknown admin path',
          paths: Object.values(ADMIN_PATHS),
        });
    }
  });
}
