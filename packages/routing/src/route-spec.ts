/**
 * The part of a revision spec the gateway needs: its HTTP routes, read from the manifest's
 * `RouteSpec` (@ployz/types) as stored in `RevisionRecord.spec` (a `StoredServiceSpec`, validated
 * by the store on read). One shape: `{ kind: 'http', hostnames, path, port }`; `tcp` routes are
 * not the gateway's HTTP table.
 */
import type { RouteSpec } from '@ployz/types';

export interface HttpRouteView {
  readonly hostnames: readonly string[];
  /** Normalised path prefix: leading `/`, no trailing `/` except the root. */
  readonly path: string;
  /** Port name on the instance (the manifest resolves every route to a declared port). */
  readonly port: string;
  /** Certificates from the installation's ACME directory (`tls = "auto"`). */
  readonly tlsAuto: boolean;
  /** Plain HTTP is answered 308 to https. */
  readonly httpsRedirect: boolean;
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
 * The HTTP routes of a spec, hostnames and path normalised like the gateway's route ids. Takes
 * any spec with `routes` — a revision's `StoredServiceSpec` or a manifest's `ServiceSpec`.
 */
export function httpRoutesOf(spec: { readonly routes: readonly RouteSpec[] }): HttpRouteView[] {
  const out: HttpRouteView[] = [];
  for (const route of spec.routes) {
    if (route.kind !== 'http') continue;
    out.push({
      hostnames: route.hostnames.map(normalizeHostname),
      path: normalizePathPrefix(route.path),
      port: route.port,
      tlsAuto: route.tls === 'auto',
      httpsRedirect: route.https_redirect === true,
    });
  }
  return out;
}
