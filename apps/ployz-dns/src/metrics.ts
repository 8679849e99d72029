/** Plain counters on the hot path; rendered as Prometheus text only when scraped. */
export class DnsMetrics {
  queries = 0;
  answered = 0;
  nxdomain = 0;
  forwarded = 0;
  /** Queries outside the zone answered from the forward cache. */
  cached = 0;
  servfail = 0;
  /** Queries answered SERVFAIL because answering threw: a bug (also counted in servfail). */
  internalErrors = 0;
  malformed = 0;
  dropped = 0;
  socketErrors = 0;
  /** TCP connections closed on accept: their source address had too many open. */
  tcpRefused = 0;
  /** TCP connections closed because a message did not arrive whole in time. */
  tcpSlow = 0;
}

export interface ViewMetrics {
  seq: number;
  lastSeq: number | null;
  names: number;
  ready: boolean;
  stale: boolean;
  updatedAtMs: number;
  rebuilds: number;
  upstreamTimeouts: number;
  upstreamFailures: number;
  upstreamRejected: number;
  cacheEntries: number;
}

export function renderMetrics(metrics: DnsMetrics, view: ViewMetrics, nowMs: number): string {
  const lines: string[] = [];
  const counter = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${value}`);
  };
  const gauge = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  counter('ployz_dns_queries_total', 'Packets received on the DNS listeners.', metrics.queries);
  counter('ployz_dns_answered_total', 'Queries answered from the projection.', metrics.answered);
  counter('ployz_dns_nxdomain_total', 'Zone queries answered NXDOMAIN.', metrics.nxdomain);
  counter('ployz_dns_forwarded_total', 'Queries forwarded upstream.', metrics.forwarded);
  counter('ployz_dns_cache_hits_total', 'Queries outside the zone answered from the cache.', metrics.cached);
  gauge('ployz_dns_cache_entries', 'Upstream answers held in the cache.', view.cacheEntries);
  counter('ployz_dns_servfail_total', 'Queries answered SERVFAIL.', metrics.servfail);
  counter(
    'ployz_dns_internal_errors_total',
    'Queries answered SERVFAIL because answering threw (a bug; also in servfail_total).',
    metrics.internalErrors,
  );
  counter(
    'ployz_dns_malformed_total',
    'Packets answered FORMERR/NOTIMP or ignored as malformed.',
    metrics.malformed,
  );
  counter('ployz_dns_dropped_total', 'Packets dropped (too short, or responses).', metrics.dropped);
  counter(
    'ployz_dns_tcp_refused_total',
    'TCP connections closed on accept: too many open from that source address.',
    metrics.tcpRefused,
  );
  counter(
    'ployz_dns_tcp_slow_total',
    'TCP connections closed: a message did not arrive whole within the deadline.',
    metrics.tcpSlow,
  );
  counter('ployz_dns_upstream_timeouts_total', 'Upstream attempts that timed out.', view.upstreamTimeouts);
  counter(
    'ployz_dns_upstream_failures_total',
    'Forwards where every upstream failed.',
    view.upstreamFailures,
  );
  counter(
    'ployz_dns_upstream_rejected_total',
    'Upstream replies dropped: wrong ID, question, source address or port (RFC 5452).',
    view.upstreamRejected,
  );
  counter('ployz_dns_view_rebuilds_total', 'Times the answer table was recompiled.', view.rebuilds);
  gauge('ployz_dns_view_seq', 'Routing-event sequence the served view reflects.', view.seq);
  gauge(
    'ployz_dns_view_lag_events',
    'Routing events in the stream not yet in the view (-1 when the store is unreachable).',
    view.lastSeq === null ? -1 : Math.max(0, view.lastSeq - view.seq),
  );
  gauge('ployz_dns_view_names', 'Owner names in the served view.', view.names);
  gauge('ployz_dns_view_ready', '1 once a projection has been loaded.', view.ready ? 1 : 0);
  gauge(
    'ployz_dns_view_stale',
    '1 while the follower cannot confirm the view is current.',
    view.stale ? 1 : 0,
  );
  gauge(
    'ployz_dns_view_age_seconds',
    'Seconds since the view last changed.',
    view.updatedAtMs === 0 ? -1 : (nowMs - view.updatedAtMs) / 1000,
  );
  return `${lines.join('\n')}\n`;
}
