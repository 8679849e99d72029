/**
 * The narrow part of a revision spec the gateway needs: its HTTP routes. The manifest schema
 * (@ployz/types) validates specs; here we only read what is there and skip what is not HTTP.
 */
export interface HttpRouteView {
  readonly hostnames: readonly string[];
  /** Normalised path prefix: leading `/`, no trailing `/` except the root. */
  readonly path: string;
  /** Port name on the instance; null means "the instance's only port, or `http`". */
  readonly port: string | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value)) return [];
  return value.filter((v): v is string => typeof v === 'string' && v.length > 0);
}

/** `api/` → `/api`, `` → `/`, `/a//b/` → `/a//b` (inner segments are kept as written). */
export function normalizePathPrefix(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`;
  while (p.length > 1 && p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** Lowercases and strips a trailing dot; keeps a leading `*.` for wildcard hostnames. */
export function normalizeHostname(hostname: string): string {
  const h = hostname.trim().toLowerCase();
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/**
 * Reads `spec.routes`. The canonical shape is the manifest's `RouteSpec` (@ployz/types):
 * `{ kind: 'http', hostnames, path, port }`. Also accepted: `{ http: { hostnames, path? }, port? }`
 * and `{ hostnames | host, path?, port? }`. Other kinds (`tcp`) and malformed entries are skipped.
 */
export function httpRoutesOf(spec: Readonly<Record<string, unknown>>): HttpRouteView[] {
  const routes = spec.routes;
  if (!Array.isArray(routes)) return [];
  const out: HttpRouteView[] = [];
  for (const route of routes) {
    if (!isRecord(route)) continue;
    if (route.kind !== undefined && route.kind !== 'http') continue;
    const http = isRecord(route.http) ? route.http : 'http' in route ? undefined : route;
    if (http === undefined) continue;
    const hostnames = [...stringList(http.hostnames), ...stringList(http.host)].map(normalizeHostname);
    if (hostnames.length === 0) continue;
    const rawPath = typeof http.path === 'string' ? http.path : '/';
    const portValue = route.port ?? http.port;
    out.push({
      hostnames,
      path: normalizePathPrefix(rawPath),
      port: typeof portValue === 'string' ? portValue : null,
    });
  }
  return out;
}
