/**
 * From a request to a route, as pure functions: the request target in the canonical form that is
 * routed and forwarded (request-target.ts; an absolute-form target's authority replaces Host, RFC
 * 9112 §3.2.2), and the route table's answer for a Host and path — or the status and reason the
 * gateway answers instead. See docs/adr/0009-gateway-canonical-requests.md.
 */
import { matchRoute, normalizeRequestHost, type Route, type RouteTable } from '@ployz/routing';
import { isValidHost, normalizeTarget } from '../request-target.ts';
import type { OwnAnswer } from './replies.ts';

/** The metrics label of a request no route took. */
export const NO_ROUTE = 'none';
/** The gateway is no forward proxy: CONNECT is never forwarded. */
export const CONNECT_REFUSED = 'CONNECT is not served here';
export const BAD_ESCAPE = 'a % in the path not followed by two hex digits';

/** `http://authority/path?query` (scheme case-insensitive): the authority, then the rest. */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]+)([/?][^#]*)?$/i;

/** What the gateway answers instead of forwarding. `label` is the metrics route label. */
export interface Refusal {
  status: number;
  label: string;
  reason: string;
  /** Not an error: the gateway's own answer (an ACME challenge, an https redirect). */
  own?: OwnAnswer;
}

/** Answers the gateway gives on plain HTTP before routing (apps/ployz-gateway/src/acme.ts). */
export interface EdgeAnswers {
  /** The HTTP-01 key authorization for `token`, if ployzd fed one. */
  challenge(token: string): string | undefined;
}

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

export type Resolved = { route: Route } | Refusal;

/**
 * The request's origin-form path and the header list to forward. For an absolute-form target
 * (`GET http://host/path`) the target's authority replaces Host, so routing and forwarding see
 * what an origin-form request to that host would have said. A string is a 400's reason.
 */
export function requestTarget(req: {
  readonly url?: string | undefined;
  readonly rawHeaders: string[];
}): { path: string; rawHeaders: string[] } | string {
  const target = req.url ?? '/';
  if (target === '*') return { path: target, rawHeaders: req.rawHeaders };
  if (target.charCodeAt(0) === 47 /* / */) {
    const path = normalizeTarget(target);
    return path === undefined ? BAD_ESCAPE : { path, rawHeaders: req.rawHeaders };
  }
  const absolute = ABSOLUTE_FORM.exec(target);
  if (absolute === null) return 'malformed request target';
  const authority = absolute[1] as string;
  if (authority.includes('@')) return 'user information in the request target';
  const rest = absolute[2] ?? '';
  const path = normalizeTarget(rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest);
  if (path === undefined) return BAD_ESCAPE;
  const raw = req.rawHeaders;
  const rawHeaders: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') continue;
    rawHeaders.push(name, raw[i + 1] as string);
  }
  rawHeaders.push('host', authority);
  return { path, rawHeaders };
}

/**
 * The route for a Host header and a canonical path: 400, 404, or 503 without a routable backend.
 * With `edge` (plain HTTP only): a known ACME challenge token is answered with its key
 * authorization, and a route asking `https_redirect` with a 308 to the same host and path.
 */
export function resolveRoute(
  table: RouteTable,
  hostHeader: string | undefined,
  path: string,
  edge?: EdgeAnswers,
): Resolved {
  if (hostHeader !== undefined && !isValidHost(hostHeader))
    return { status: 400, label: NO_ROUTE, reason: 'malformed Host' };
  const host = normalizeRequestHost(hostHeader);
  if (edge !== undefined && path.startsWith(CHALLENGE_PREFIX)) {
    const answer = edge.challenge(path.slice(CHALLENGE_PREFIX.length));
    if (answer !== undefined)
      return { status: 200, label: NO_ROUTE, reason: 'acme challenge', own: { body: answer, headers: {} } };
  }
  const route = matchRoute(table, host, path);
  if (route === undefined) return { status: 404, label: NO_ROUTE, reason: 'no route for this host and path' };
  if (edge !== undefined && route.httpsRedirect === true && host !== undefined)
    return {
      status: 308,
      label: route.id,
      reason: 'https only',
      own: { body: '', headers: { Location: `https://${host}${path}` } },
    };
  if (route.backends.length === 0)
    return {
      status: 503,
      label: route.id,
      reason: `no routable backend for ${route.namespace}/${route.service}`,
    };
  return { route };
}
