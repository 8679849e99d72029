/**
 * The one path rule the gateway routes and forwards by (docs/adr/0009-gateway-canonical-requests.md):
 * RFC 3986 §6.2.2 normalisation of the path part of an origin-form target — percent-encoded
 * unreserved characters decoded, other escapes' hex upper-cased, dot-segments removed — and never
 * `%2F` (or any other reserved escape) decoded. The query is left as sent.
 */

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d /* - */ ||
    c === 0x2e /* . */ ||
    c === 0x5f /* _ */ ||
    c === 0x7e /* ~ */
  );
}

/** RFC 3986 §5.2.4 remove_dot_segments, on a path starting with `/`. */
function removeDotSegments(path: string): string {
  const out: string[] = [];
  const segments = path.split('/');
  // segments[0] is '' (the path starts with '/')
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    const last = i === segments.length - 1;
    if (segment === '.') {
      if (last) out.push('');
    } else if (segment === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(segment);
    }
  }
  return `/${out.join('/')}`;
}

/**
 * The normalised form of an origin-form target (`/path?query`), or `undefined` when its path holds
 * a `%` not followed by two hex digits (400). A target already in normal form comes back as the
 * same string after two scans, nothing allocated (the hot path).
 */
export function normalizeTarget(target: string): string | undefined {
  const q = target.indexOf('?');
  const end = q === -1 ? target.length : q;
  const pct = target.indexOf('%');
  const dot = target.indexOf('/.');
  if ((pct === -1 || pct >= end) && (dot === -1 || dot >= end)) return target;
  let path = target.slice(0, end);
  if (pct !== -1 && pct < end) {
    let decoded = '';
    let from = 0;
    for (let i = path.indexOf('%'); i !== -1; i = path.indexOf('%', i + 1)) {
      const hex = path.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return undefined;
      const c = Number.parseInt(hex, 16);
      decoded += path.slice(from, i) + (isUnreserved(c) ? String.fromCharCode(c) : `%${hex.toUpperCase()}`);
      from = i + 3;
      i += 2;
    }
    path = decoded + path.slice(from);
  }
  if (path.includes('/.')) path = removeDotSegments(path);
  return q === -1 ? path : path + target.slice(q);
}

/** reg-name characters the gateway takes in a Host (RFC 3986 §3.2.2 unreserved; no escapes, no sub-delims). */
const HOST_CHAR = new Uint8Array(128);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~')
  HOST_CHAR[c.charCodeAt(0)] = 1;
const IPV6_CHAR = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF:.') IPV6_CHAR[c.charCodeAt(0)] = 1;

/**
 * A Host value (or an absolute-form authority) as RFC 9112 §3.2 allows it: `host[:port]`, host a
 * non-empty name of unreserved characters (a trailing dot included) or a bracketed IPv6 address,
 * port 1–5 digits up to 65535. No user information, no list, no escapes.
 */
export function isValidHost(value: string): boolean {
  const n = value.length;
  if (n === 0) return false;
  let i = 0;
  if (value.charCodeAt(0) === 91 /* [ */) {
    const close = value.indexOf(']');
    if (close < 3) return false;
    let colons = 0;
    for (i = 1; i < close; i++) {
      const c = value.charCodeAt(i);
      if (IPV6_CHAR[c] !== 1) return false;
      if (c === 58) colons += 1;
    }
    if (colons < 2) return false;
    i = close + 1;
  } else {
    while (i < n && value.charCodeAt(i) !== 58 /* : */) {
      if (HOST_CHAR[value.charCodeAt(i)] !== 1) return false;
      i++;
    }
    if (i === 0) return false;
  }
  if (i === n) return true;
  if (value.charCodeAt(i) !== 58 || n - i - 1 < 1 || n - i - 1 > 5) return false;
  let port = 0;
  for (let j = i + 1; j < n; j++) {
    const d = value.charCodeAt(j) - 48;
    if (d < 0 || d > 9) return false;
    port = port * 10 + d;
  }
  return port <= 65535;
}
