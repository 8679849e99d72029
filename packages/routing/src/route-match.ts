import type { Route, RouteTable } from './route-table.ts';

/**
 * Normalises a Host header (or `:authority`): lowercase, port stripped, trailing dot stripped,
 * IPv6 brackets removed. Returns '' when absent.
 */
export function normalizeRequestHost(raw: string | undefined): string {
  if (raw === undefined || raw.length === 0) return '';
  let host = raw;
  if (host.charCodeAt(0) === 91 /* [ */) {
    const end = host.indexOf(']');
    host = end === -1 ? host.slice(1) : host.slice(1, end);
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

/**
 * True when `prefix` matches `path` on a segment boundary: `/api` matches `/api`, `/api/x` and
 * `/api?q`, never `/apix`. The root prefix matches every path. `path` may carry a query.
 */
export function pathMatches(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length) return true;
  const next = path.charCodeAt(prefix.length);
  return next === 47 /* / */ || next === 63 /* ? */;
}

function longestPrefix(routes: readonly Route[] | undefined, path: string): Route | undefined {
  if (routes === undefined) return undefined;
  for (const route of routes) if (pathMatches(route.path, path)) return route;
  return undefined;
}

/**
 * Finds the route for a request: the exact host first, then wildcard hosts from the most to the
 * least specific suffix (`*.example.com` matches `a.example.com` and `a.b.example.com`); within a
 * host, the longest matching path prefix. `host` must already be normalised.
 */
export function matchRoute(table: RouteTable, host: string, path: string): Route | undefined {
  const exact = longestPrefix(table.exact.get(host), path);
  if (exact !== undefined) return exact;
  if (table.wildcard.size === 0) return undefined;
  let dot = host.indexOf('.');
  while (dot !== -1) {
    const suffix = host.slice(dot + 1);
    const found = longestPrefix(table.wildcard.get(suffix), path);
    if (found !== undefined) return found;
    dot = host.indexOf('.', dot + 1);
  }
  return undefined;
}
