import http from 'node:http';
import { ADMIN_PATHS } from '@ployz/protocol/admin';
import type { Freshness, RouteTable } from '@ployz/routing';
import type { GatewayMetrics, PoolStats } from './metrics.ts';

export interface AdminSources {
  freshness(): Freshness;
  table(): RouteTable | undefined;
  metrics: GatewayMetrics;
  inFlight(): number;
  /** Queueing of each backend's upstream pool (metrics). */
  pools(): Iterable<PoolStats>;
  certificates(): string[];
  startedAt: number;
  version: string;
}

/** One admin answer, whoever carries it (the admin listener, or a worker's IPC reply). */
export interface AdminAnswer {
  status: number;
  contentType: string;
  body: string;
}

const JSON_TYPE = 'application/json';
export const METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function jsonAnswer(status: number, body: unknown): AdminAnswer {
  return { status, contentType: JSON_TYPE, body: `${JSON.stringify(body, null, 2)}\n` };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** Writes an answer on a node:http response. */
export function sendAnswer(res: http.ServerResponse, answer: AdminAnswer): void {
  res.writeHead(answer.status, {
    'content-type': answer.contentType,
    'content-length': Buffer.byteLength(answer.body),
  });
  res.end(answer.body);
}

/** The request's path without its query, and whether its method may read. */
export function adminPath(req: http.IncomingMessage): string | null {
  if (req.method !== 'GET' && req.method !== 'HEAD') return null;
  return (req.url ?? '/').split('?')[0] ?? '/';
}

export const METHOD_REFUSED = jsonAnswer(405, { error: 'use GET' });

export function unknownPath(): AdminAnswer {
  return jsonAnswer(404, { error: 'unknown admin path', paths: Object.values(ADMIN_PATHS) });
}

/**
 * The admin answers of one gateway process: `/_ployz/health` is 200 only when the table is
 * loaded and fresh, else 503 with the reason; `/_ployz/status` says how fresh and how big the
 * table is; `/metrics` is Prometheus text.
 */
export function adminAnswer(sources: AdminSources, path: string): AdminAnswer {
  const freshness = sources.freshness();
  const table = sources.table();
  switch (path) {
    case ADMIN_PATHS.health:
      return jsonAnswer(freshness.stale ? 503 : 200, {
        status: freshness.stale ? 'stale' : 'ok',
        reason: freshness.reason,
        applied_seq: freshness.appliedSeq,
        lag: freshness.lag,
      });
    case ADMIN_PATHS.status:
      return jsonAnswer(200, {
        version: sources.version,
        pid: process.pid,
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
          const mb = (bytes: number) => Math.round(bytes / 1048576);
          return {
            rss: mb(m.rss),
            heap_total: mb(m.heapTotal),
            heap_used: mb(m.heapUsed),
            external: mb(m.external),
            array_buffers: mb(m.arrayBuffers),
          };
        })(),
      });
    case ADMIN_PATHS.metrics:
      return {
        status: 200,
        contentType: METRICS_TYPE,
        body: sources.metrics.render(freshness, {
          routes: table?.routeCount ?? 0,
          backends: table?.backendCount ?? 0,
          inFlight: sources.inFlight(),
          pools: sources.pools(),
        }),
      };
    default:
      return unknownPath();
  }
}

/** The admin listener of a single-process gateway (never the public port). */
export function createAdminServer(sources: AdminSources): http.Server {
  return http.createServer((req, res) => {
    const path = adminPath(req);
    sendAnswer(res, path === null ? METHOD_REFUSED : adminAnswer(sources, path));
  });
}
