import type { Freshness } from '@ployz/routing';
import { type PoolCounters, WAIT_BUCKETS } from './upstream/pool.ts';

/** One backend's upstream pool as /metrics shows it. */
export interface PoolStats {
  /** `ip:port`. */
  backend: string;
  open: number;
  idle: number;
  queued: number;
  counters: PoolCounters;
}

/** Upper bounds (seconds) of the upstream latency histogram buckets. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

class RouteStats {
  readonly byStatus = new Map<number, number>();
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  latencyCount = 0;
  latencySum = 0;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Gateway metrics, rendered as Prometheus text. Counting is a map lookup and an add per request;
 * routes are labelled by their id (`host/path`), unmatched requests by `none`.
 */
export class GatewayMetrics {
  readonly #routes = new Map<string, RouteStats>();
  #upstreamErrors = 0;
  #invalidResponses = 0;
  #retries = 0;
  #upgrades = 0;
  #clientErrors = 0;
  #handOffs = 0;

  #stats(route: string): RouteStats {
    let stats = this.#routes.get(route);
    if (stats === undefined) {
      stats = new RouteStats();
      this.#routes.set(route, stats);
    }
    return stats;
  }

  request(route: string, status: number): void {
    const stats = this.#stats(route);
    stats.byStatus.set(status, (stats.byStatus.get(status) ?? 0) + 1);
  }

  /** Time from sending the request upstream to its response headers. */
  upstreamLatency(route: string, seconds: number): void {
    const stats = this.#stats(route);
    stats.latencyCount += 1;
    stats.latencySum += seconds;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      if (seconds <= (LATENCY_BUCKETS[i] as number)) {
        stats.buckets[i] = (stats.buckets[i] ?? 0) + 1;
        break;
      }
    }
  }

  upstreamError(): void {
    this.#upstreamErrors += 1;
  }
  /** An upstream answer broke HTTP/1.1 syntax (its head or framing): 502 and its connection closed. */
  invalidResponse(): void {
    this.#invalidResponses += 1;
  }
  retry(): void {
    this.#retries += 1;
  }
  upgrade(): void {
    this.#upgrades += 1;
  }
  clientError(): void {
    this.#clientErrors += 1;
  }
  /** A client connection left the fast path for node:http (body, upgrade, unusual head). */
  handOff(): void {
    this.#handOffs += 1;
  }

  render(
    freshness: Freshness,
    extra: { routes: number; backends: number; inFlight: number; pools?: Iterable<PoolStats> },
  ): string {
    const out: string[] = [];
    out.push('# HELP ployz_gateway_requests_total Requests by route and response status.');
    out.push('# TYPE ployz_gateway_requests_total counter');
    for (const [route, stats] of this.#routes) {
      for (const [status, count] of stats.byStatus) {
        out.push(`ployz_gateway_requests_total{route="${escapeLabel(route)}",status="${status}"} ${count}`);
      }
    }
    out.push('# HELP ployz_gateway_upstream_latency_seconds Upstream time to response headers.');
    out.push('# TYPE ployz_gateway_upstream_latency_seconds histogram');
    for (const [route, stats] of this.#routes) {
      if (stats.latencyCount === 0) continue;
      const label = escapeLabel(route);
      let cumulative = 0;
      for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
        cumulative += stats.buckets[i] ?? 0;
        out.push(
          `ployz_gateway_upstream_latency_seconds_bucket{route="${label}",le="${LATENCY_BUCKETS[i]}"} ${cumulative}`,
        );
      }
      out.push(
        `ployz_gateway_upstream_latency_seconds_bucket{route="${label}",le="+Inf"} ${stats.latencyCount}`,
      );
      out.push(`ployz_gateway_upstream_latency_seconds_sum{route="${label}"} ${stats.latencySum}`);
      out.push(`ployz_gateway_upstream_latency_seconds_count{route="${label}"} ${stats.latencyCount}`);
    }
    renderPools(out, extra.pools ?? []);
    const gauge = (name: string, help: string, value: number, type = 'gauge') => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    gauge(
      'ployz_gateway_upstream_errors_total',
      'Upstream connect/response failures.',
      this.#upstreamErrors,
      'counter',
    );
    gauge(
      'ployz_gateway_upstream_invalid_responses_total',
      'Upstream answers refused as malformed (bad header name or byte, framing); the client got 502.',
      this.#invalidResponses,
      'counter',
    );
    gauge('ployz_gateway_retries_total', 'Requests retried on another backend.', this.#retries, 'counter');
    gauge(
      'ployz_gateway_upgrades_total',
      'Connection upgrades (WebSocket) proxied.',
      this.#upgrades,
      'counter',
    );
    gauge(
      'ployz_gateway_client_errors_total',
      'Malformed or timed-out client requests.',
      this.#clientErrors,
      'counter',
    );
    gauge(
      'ployz_gateway_handed_off_connections_total',
      'HTTP/1.1 connections passed from the fast path to node:http (bodies, upgrades, unusual heads).',
      this.#handOffs,
      'counter',
    );
    gauge('ployz_gateway_in_flight_requests', 'Requests being proxied now.', extra.inFlight);
    gauge('ployz_gateway_routes', 'Routes in the served table.', extra.routes);
    gauge('ployz_gateway_backends', 'Routable backends in the served table.', extra.backends);
    gauge(
      'ployz_gateway_projection_applied_seq',
      'Stream sequence reflected in the served table.',
      freshness.appliedSeq,
    );
    gauge('ployz_gateway_projection_stream_seq', 'Last known stream sequence.', freshness.streamSeq ?? -1);
    gauge(
      'ployz_gateway_projection_lag_events',
      'Events not yet reflected (-1 unknown).',
      freshness.lag ?? -1,
    );
    gauge('ployz_gateway_projection_stale', '1 when the served table may be stale.', freshness.stale ? 1 : 0);
    gauge(
      'ployz_gateway_projection_rebuild_seconds',
      'Duration of the last successful rebuild.',
      (freshness.lastRebuildMs ?? 0) / 1000,
    );
    gauge(
      'ployz_gateway_projection_last_success_timestamp_seconds',
      'When the table was last rebuilt.',
      (freshness.lastSuccessAt ?? 0) / 1000,
    );
    gauge('ployz_gateway_projection_rebuilds_total', 'Successful rebuilds.', freshness.rebuilds, 'counter');
    gauge(
      'ployz_gateway_projection_full_rebuilds_total',
      'Rebuilds that recomputed every route (snapshots, fallbacks); the others were incremental.',
      freshness.fullRebuilds,
      'counter',
    );
    gauge(
      'ployz_gateway_projection_rebuild_failures_total',
      'Failed rebuilds.',
      freshness.rebuildFailures,
      'counter',
    );
    gauge('ployz_gateway_projection_resyncs_total', 'Snapshots taken.', freshness.resyncs, 'counter');
    return `${out.join('\n')}\n`;
  }
}

/** Per backend: open and idle upstream connections, requests queued for one, and their waits. */
function renderPools(out: string[], pools: Iterable<PoolStats>): void {
  const list = [...pools];
  out.push(
    '# HELP ployz_gateway_upstream_connections Upstream connections open to a backend (state: open, idle).',
    '# TYPE ployz_gateway_upstream_connections gauge',
  );
  for (const p of list) {
    const b = escapeLabel(p.backend);
    out.push(`ployz_gateway_upstream_connections{backend="${b}",state="open"} ${p.open}`);
    out.push(`ployz_gateway_upstream_connections{backend="${b}",state="idle"} ${p.idle}`);
  }
  out.push(
    '# HELP ployz_gateway_upstream_queued_requests Requests waiting now for a connection to a backend (its pool at its cap).',
    '# TYPE ployz_gateway_upstream_queued_requests gauge',
  );
  for (const p of list)
    out.push(`ployz_gateway_upstream_queued_requests{backend="${escapeLabel(p.backend)}"} ${p.queued}`);
  out.push(
    "# HELP ployz_gateway_upstream_pool_requests_total Bodyless requests sent through a backend's pool.",
    '# TYPE ployz_gateway_upstream_pool_requests_total counter',
  );
  for (const p of list)
    out.push(
      `ployz_gateway_upstream_pool_requests_total{backend="${escapeLabel(p.backend)}"} ${p.counters.requests}`,
    );
  out.push(
    '# HELP ployz_gateway_upstream_queue_wait_seconds Time a request waited for a connection to a backend (only requests that waited).',
    '# TYPE ployz_gateway_upstream_queue_wait_seconds histogram',
  );
  for (const p of list) {
    const b = escapeLabel(p.backend);
    const c = p.counters;
    let cumulative = 0;
    for (let i = 0; i < WAIT_BUCKETS.length; i++) {
      cumulative += c.waitBuckets[i] ?? 0;
      out.push(
        `ployz_gateway_upstream_queue_wait_seconds_bucket{backend="${b}",le="${WAIT_BUCKETS[i]}"} ${cumulative}`,
      );
    }
    out.push(`ployz_gateway_upstream_queue_wait_seconds_bucket{backend="${b}",le="+Inf"} ${c.waits}`);
    out.push(`ployz_gateway_upstream_queue_wait_seconds_sum{backend="${b}"} ${c.waitSeconds}`);
    out.push(`ployz_gateway_upstream_queue_wait_seconds_count{backend="${b}"} ${c.waits}`);
  }
}
