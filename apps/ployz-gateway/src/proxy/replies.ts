/**
 * The gateway's own answers (400, 404, 408, 502, 503, 504, …), built in one place so that every
 * path says the same: a one-line plain-text body, `<status> <reason>`, and these header fields —
 *
 * - `Content-Type: text/plain; charset=utf-8` and `Content-Length`;
 * - `X-Ployz-Gateway: error`, which tells the gateway's answer from a backend's;
 * - `Date` (on node:http's and node:http2's responses, node adds it);
 * - `Connection: close` exactly when the gateway closes the connection after the answer (never on
 *   HTTP/2, which has no such field; RFC 9113 §8.2.2).
 *
 * Written three ways: on a node:http / node:http2 response (`sendError`), as HTTP/1.1 bytes on a
 * connection the fast path keeps or closes (`errorResponse`), and on a raw socket that closes after
 * it (`closingErrorResponse`: client errors, CONNECT, refused upgrades).
 */
import http from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

const statusLines = new Map<number, string>();

/** `HTTP/1.1 <status> <reason phrase>\r\n` (cached for the statuses seen). */
export function statusLine(status: number): string {
  let line = statusLines.get(status);
  if (line === undefined) {
    line = `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    if (statusLines.size < 256) statusLines.set(status, line);
  }
  return line;
}

/**
 * An answer of the gateway's own that is no error (an ACME HTTP-01 key authorization, an https
 * redirect): its body replaces `<status> <reason>`, its header fields are added.
 */
export interface OwnAnswer {
  readonly body: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** The one builder: the body and header fields of the gateway's answer. */
function errorReply(
  status: number,
  reason: string,
  close: boolean,
  date: string | undefined,
  own?: OwnAnswer,
): { body: string; headers: Record<string, string> } {
  const body = own?.body ?? `${status} ${reason}\n`;
  const headers: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Ployz-Gateway': own === undefined ? 'error' : 'answer',
    ...own?.headers,
  };
  if (date !== undefined) headers.Date = date;
  if (close) headers.Connection = 'close';
  return { body, headers };
}

/**
 * The gateway's answer as HTTP/1.1 bytes. `close`: the connection closes after it. `date`: the
 * `Date` value (the fast path keeps one, refreshed every second).
 */
export function errorResponse(
  status: number,
  reason: string,
  close: boolean,
  date: string,
  own?: OwnAnswer,
): string {
  const { body, headers } = errorReply(status, reason, close, date, own);
  let out = statusLine(status);
  for (const name in headers) out += `${name}: ${headers[name]}\r\n`;
  return `${out}\r\n${body}`;
}

/** The gateway's answer as HTTP/1.1 bytes for a socket that closes after it. */
export function closingErrorResponse(status: number, reason: string): string {
  return errorResponse(status, reason, true, new Date().toUTCString());
}

/**
 * The gateway's answer on a node:http or node:http2 response; a response already started is cut
 * instead. `close`: the gateway closes the connection after it (HTTP/1 only).
 */
export function sendError(
  res: http.ServerResponse | Http2ServerResponse,
  status: number,
  reason: string,
  close = false,
  own?: OwnAnswer,
): void {
  if (res.destroyed) return;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { body, headers } = errorReply(status, reason, close && !('stream' in res), undefined, own);
  (res as http.ServerResponse).writeHead(status, headers);
  res.end(body);
}
