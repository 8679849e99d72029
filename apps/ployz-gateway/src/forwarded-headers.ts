/**
 * Header rewriting for proxied requests and responses, done in one pass over `rawHeaders`
 * (no header object is built for HTTP/1). Hop-by-hop headers are dropped (RFC 9110 §7.6.1),
 * `X-Forwarded-For` is appended to, `X-Forwarded-Proto` and `X-Forwarded-Host` are set.
 */

export interface RequestHeaderScan {
  /** Flat `[name, value, …]` list for the upstream request. */
  headers: string[];
  /** Host header (or HTTP/2 `:authority`), raw. */
  host: string | undefined;
  /** The request carries a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
  /** Why the request must be refused with 400, if it must. */
  invalid: string | undefined;
}

/**
 * Whether `text[start, end)` equals `lower` (a lowercase ASCII literal), ignoring ASCII case,
 * without allocating a lowercased copy.
 */
export function nameIs(text: string, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = text.charCodeAt(start + i);
    const t = lower.charCodeAt(i);
    if (c !== t && !(t >= 97 && t <= 122 && c === t - 32)) return false;
  }
  return true;
}

/**
 * Response header lines a proxy drops (RFC 9110 §7.6.1 hop-by-hop, and `transfer-encoding`: the
 * body is re-framed), by the name at `text[start, end)`.
 */
export function isResponseHopByHop(text: string, start: number, end: number): boolean {
  switch (end - start) {
    case 2:
      return nameIs(text, start, end, 'te');
    case 7:
      return nameIs(text, start, end, 'trailer') || nameIs(text, start, end, 'upgrade');
    case 10:
      return nameIs(text, start, end, 'connection') || nameIs(text, start, end, 'keep-alive');
    case 16:
      return nameIs(text, start, end, 'proxy-connection');
    case 17:
      return nameIs(text, start, end, 'transfer-encoding');
    default:
      return false;
  }
}

/** What the forwarding policy does with one request header line (see `requestLinePolicy`). */
export const LINE_KEEP = 0;
export const LINE_DROP = 1;
export const LINE_FORWARDED_FOR = 2;
export const LINE_REWRITE = 3;
export type LinePolicy =
  | typeof LINE_KEEP
  | typeof LINE_DROP
  | typeof LINE_FORWARDED_FOR
  | typeof LINE_REWRITE;

/** A Connection value naming nothing but `keep-alive` / `close` (no header to strip with it). */
const PLAIN_CONNECTION = /^(?:[ \t]*(?:keep-alive|close)[ \t]*)(?:,[ \t]*(?:keep-alive|close)[ \t]*)*$/i;

/**
 * How a request header line is forwarded, by its name at `text[start, end)` and its value at
 * `text[valueStart, valueEnd)` — the line-by-line form of `scanRequestHeaders`: hop-by-hop lines
 * and the X-Forwarded-Host/-Proto the gateway sets itself are dropped, X-Forwarded-For values
 * are carried into the appended one, a Connection line listing other headers (which must go
 * too) or anything that changes framing needs the full rewrite; everything else is kept as sent.
 */
export function requestLinePolicy(
  text: string,
  start: number,
  end: number,
  valueStart: number,
  valueEnd: number,
): LinePolicy {
  switch (end - start) {
    case 2:
      return nameIs(text, start, end, 'te') ? LINE_DROP : LINE_KEEP;
    case 7:
      if (nameIs(text, start, end, 'trailer')) return LINE_DROP;
      return nameIs(text, start, end, 'upgrade') ? LINE_REWRITE : LINE_KEEP;
    case 10:
      if (nameIs(text, start, end, 'keep-alive')) return LINE_DROP;
      if (!nameIs(text, start, end, 'connection')) return LINE_KEEP;
      return PLAIN_CONNECTION.test(text.slice(valueStart, valueEnd)) ? LINE_DROP : LINE_REWRITE;
    case 15:
      return nameIs(text, start, end, 'x-forwarded-for') ? LINE_FORWARDED_FOR : LINE_KEEP;
    case 16:
      return nameIs(text, start, end, 'proxy-connection') || nameIs(text, start, end, 'x-forwarded-host')
        ? LINE_DROP
        : LINE_KEEP;
    case 17:
      if (nameIs(text, start, end, 'x-forwarded-proto')) return LINE_DROP;
      return nameIs(text, start, end, 'transfer-encoding') ? LINE_REWRITE : LINE_KEEP;
    default:
      return LINE_KEEP;
  }
}

/** The client's address as X-Forwarded-For shows it (IPv4 clients of a `::` listener unmapped). */
export function forwardedClient(clientAddress: string | undefined): string {
  if (clientAddress === undefined) return '';
  return clientAddress.startsWith('::ffff:') ? clientAddress.slice(7) : clientAddress;
}

/**
 * The upstream request head for a plain request whose lines need no full rewrite: the head as
 * received less the `drop` ranges (`[start, end)` pairs, each line with its leading CRLF), plus
 * the X-Forwarded-* lines `scanRequestHeaders` would add, and the final blank line.
 */
export function plainUpstreamHead(
  text: string,
  drop: readonly number[],
  host: string,
  priorForwardedFor: string | undefined,
  clientAddress: string | undefined,
  proto: 'http' | 'https',
): string {
  let head = '';
  let pos = 0;
  for (let i = 0; i < drop.length; i += 2) {
    head += text.slice(pos, drop[i]);
    pos = drop[i + 1] as number;
  }
  head = pos === 0 ? text : head + text.slice(pos);
  const client = forwardedClient(clientAddress);
  const forwardedFor = priorForwardedFor === undefined ? client : `${priorForwardedFor}, ${client}`;
  return `${head}\r\nx-forwarded-for: ${forwardedFor}\r\nx-forwarded-proto: ${proto}\r\nx-forwarded-host: ${host}\r\n\r\n`;
}

function isHopByHop(lower: string, keepUpgrade: boolean): boolean {
  switch (lower.length) {
    case 2:
      return lower === 'te';
    case 7:
      return lower === 'trailer' || (!keepUpgrade && lower === 'upgrade');
    case 10:
      return (!keepUpgrade && lower === 'connection') || lower === 'keep-alive';
    case 16:
      return lower === 'proxy-connection';
    default:
      return false;
  }
}

/** Extra header names listed in `Connection:` (other than the usual tokens), lowercased. */
function connectionListed(value: string): string[] {
  const names: string[] = [];
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && name !== 'host' && name !== 'keep-alive' && name !== 'close' && name !== 'upgrade')
      names.push(name);
  }
  return names;
}

export function scanRequestHeaders(
  raw: readonly string[],
  clientAddress: string | undefined,
  proto: 'http' | 'https',
  keepUpgrade: boolean,
): RequestHeaderScan {
  const headers: string[] = [];
  let host: string | undefined;
  let forwardedFor: string | undefined;
  let hasBody = false;
  let connection: string | undefined;
  let sawHost = false;
  let invalid: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':authority') host ??= value;
      continue;
    }
    const len = name.length;
    if (len !== 2 && len !== 4 && len !== 6 && len !== 7 && len !== 10 && (len < 14 || len > 17)) {
      headers.push(name, value);
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'host') {
      if (sawHost) invalid = 'more than one Host header';
      host = value;
      sawHost = true;
    } else if (lower === 'connection') {
      connection = value;
    } else if (lower === 'x-forwarded-for') {
      forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
      continue;
    } else if (lower === 'x-forwarded-host' || lower === 'x-forwarded-proto') {
      continue;
    } else if (lower === 'content-length') {
      hasBody = value !== '0';
    } else if (lower === 'transfer-encoding') {
      hasBody = true;
      // Re-framed by the upstream client (chunked when the length is unknown).
      if (!keepUpgrade) continue;
    } else if (lower === 'expect') {
      // node:http already answered `100-continue` to the client.
      continue;
    }
    if (isHopByHop(lower, keepUpgrade)) continue;
    headers.push(name, value);
  }
  if (connection !== undefined) {
    const listed = connectionListed(connection);
    if (listed.length > 0) {
      for (let i = headers.length - 2; i >= 0; i -= 2) {
        if (listed.includes((headers[i] as string).toLowerCase())) headers.splice(i, 2);
      }
    }
  }
  if (host !== undefined && !sawHost) {
    headers.push('host', host);
  }
  const client = forwardedClient(clientAddress);
  headers.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  headers.push('x-forwarded-proto', proto);
  if (host !== undefined) headers.push('x-forwarded-host', host);
  return { headers, host, hasBody, invalid };
}

export interface ResponseHeaderScan {
  headers: string[];
  hasDate: boolean;
}

/**
 * Drops hop-by-hop (and, for HTTP/2 clients, all connection-specific) response headers. Takes
 * node's `rawHeaders` strings or undici's raw `Buffer`s.
 */
export function scanResponseHeaders(raw: unknown): ResponseHeaderScan {
  const headers: string[] = [];
  let hasDate = false;
  if (!Array.isArray(raw)) return { headers, hasDate };
  for (let i = 0; i < raw.length; i += 2) {
    const n: unknown = raw[i];
    const v: unknown = raw[i + 1];
    const name = typeof n === 'string' ? n : Buffer.isBuffer(n) ? n.toString('latin1') : String(n);
    const value = typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString('latin1') : String(v);
    if (isResponseHopByHop(name, 0, name.length)) continue;
    if (nameIs(name, 0, name.length, 'date')) hasDate = true;
    headers.push(name, value);
  }
  return { headers, hasDate };
}

/** Flat list → header object (HTTP/2 responses), repeated names become arrays. */
export function headerObject(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase();
    const value = flat[i + 1] as string;
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}
