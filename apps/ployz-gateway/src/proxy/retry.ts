/**
 * What a failure before any answer leads to, by the error's code (from the lean client,
 * upstream/connection.ts; from undici; from node:net): a retry on the next backend — only for an
 * idempotent request without a body, and only when the request cannot have been processed: the
 * connect failed, or a reused keep-alive socket closed before any byte of an answer (RFC 9110
 * §9.2.2) — else a 504 (timeout) or a 502 naming the code.
 */

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Errors that mean "the request never reached the backend". */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNTIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EADDRNOTAVAIL',
]);
/**
 * The backend closed the connection before sending any byte of an answer: a reused keep-alive
 * socket it closed just before we wrote, or a backend shutting down.
 */
const STALE_SOCKET_ERRORS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UPSTREAM_CLOSED']);
const TIMEOUT_ERRORS = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UPSTREAM_TIMEOUT']);

/** The upstream's answer broke HTTP/1.1 syntax (upstream/connection.ts, or undici's llhttp). */
export const INVALID_RESPONSE = 'UPSTREAM_PROTOCOL';

/** A method whose request may be sent again (RFC 9110 §9.2.2). */
export function isIdempotent(method: string): boolean {
  return IDEMPOTENT.has(method);
}

/** The backend refused or never took the connection (the balancer passes over it for a while). */
export function isConnectFailure(code: string): boolean {
  return CONNECT_ERRORS.has(code);
}

/**
 * Whether a retryable request that failed with `code` on attempt `attempt` (0 first) goes to the
 * next backend: at most once per backend, and once even when the route has only one.
 */
export function shouldRetry(code: string, attempt: number, backends: number): boolean {
  const unprocessed = CONNECT_ERRORS.has(code) || STALE_SOCKET_ERRORS.has(code);
  return unprocessed && attempt + 1 < Math.max(backends, 2);
}

/** The gateway's answer to a failure it does not retry: 504 for a timeout, else 502. */
export function failureReply(code: string): { status: number; reason: string } {
  if (TIMEOUT_ERRORS.has(code)) return { status: 504, reason: 'upstream timed out' };
  if (code === INVALID_RESPONSE)
    return { status: 502, reason: `upstream sent an invalid response (${code})` };
  return { status: 502, reason: `upstream ${CONNECT_ERRORS.has(code) ? 'connect ' : ''}failed (${code})` };
}

/** The stable code of whatever an upstream client threw or reported. */
export function errorCode(error: unknown): string {
  // undici's parser (llhttp) refusing the answer: its errors carry no code.
  if ((error as { name?: unknown } | null)?.name === 'HTTPParserError') return INVALID_RESPONSE;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}
