/**
 * A strict parser for the plain HTTP/1.1 request heads the gateway's fast path serves: origin-form
 * target, `HTTP/1.1`, token header names, no body, no upgrade, no `Expect`. It never rejects a
 * request itself: anything it does not accept (`undefined`) is handed, bytes intact, to node:http
 * (llhttp), which answers or refuses it as before. So the fast path can only be *narrower* than
 * node:http, never more lenient (see docs/adr/0008-gateway-fast-path.md).
 */
import http from 'node:http';

export interface PlainRequestHead {
  method: string;
  /** Origin-form target (`/path?query`). */
  target: string;
  /** Flat `[name, value, …]`, names as sent, values without surrounding whitespace. */
  raw: string[];
  /** The client asked to close after this exchange (`Connection: close`). */
  close: boolean;
}

const METHODS = new Set(http.METHODS);

/** RFC 9110 tchar, as a lookup table over ASCII. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;

/** Most header lines the fast path takes (node:http keeps the unusual ones). */
export const MAX_PLAIN_HEADERS = 128;
const MAX_METHOD = 16;

function isToken(text: string, from: number, to: number): boolean {
  if (to <= from) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c >= 128 || TCHAR[c] === 0) return false;
  }
  return true;
}

/** Field value bytes: HTAB, visible ASCII, SP and obs-text; no other control characters. */
function isFieldValue(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if ((c < 32 && c !== 9) || c === 127) return false;
  }
  return true;
}

/** Target bytes: visible ASCII only, no `#` (a fragment is never sent on the wire). */
function isPlainTarget(text: string, from: number, to: number): boolean {
  if (to <= from || text.charCodeAt(from) !== 47 /* / */) return false;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c <= 32 || c >= 127 || c === 35) return false;
  }
  return true;
}

function isWhitespace(c: number): boolean {
  return c === 32 || c === 9;
}

/**
 * Parses `text` — a request head decoded as latin1, without its final blank line — when it is a
 * plain bodyless HTTP/1.1 request; `undefined` means "let node:http handle this one".
 */
export function parsePlainRequestHead(text: string): PlainRequestHead | undefined {
  let eol = text.indexOf('\r\n');
  if (eol === -1) eol = text.length;
  const sp1 = text.indexOf(' ');
  if (sp1 <= 0 || sp1 > MAX_METHOD || !isToken(text, 0, sp1)) return undefined;
  const sp2 = text.indexOf(' ', sp1 + 1);
  if (sp2 === -1 || sp2 >= eol || !isPlainTarget(text, sp1 + 1, sp2)) return undefined;
  if (eol - sp2 !== 9 || !text.startsWith('HTTP/1.1', sp2 + 1)) return undefined;
  const method = text.slice(0, sp1);
  // node:http (llhttp) knows a fixed list of methods and refuses the others.
  if (!METHODS.has(method)) return undefined;
  const raw: string[] = [];
  let close = false;
  let sawHost = false;
  let sawLength = false;
  let pos = eol + 2;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon >= end || !isToken(text, pos, colon)) return undefined;
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && isWhitespace(text.charCodeAt(vs))) vs++;
    while (ve > vs && isWhitespace(text.charCodeAt(ve - 1))) ve--;
    if (!isFieldValue(text, vs, ve)) return undefined;
    const name = text.slice(pos, colon);
    const value = text.slice(vs, ve);
    pos = end + 2;
    if (raw.length >= MAX_PLAIN_HEADERS * 2) return undefined;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') sawHost = true;
        break;
      case 6:
        if (name.toLowerCase() === 'expect') return undefined;
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') return undefined;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          const v = value.toLowerCase();
          if (v.includes('upgrade')) return undefined;
          if (v.includes('close')) close = true;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') {
          // Only an explicit empty body stays here; any body goes to node:http + undici.
          if (sawLength || value !== '0') return undefined;
          sawLength = true;
        }
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return undefined;
        break;
    }
    raw.push(name, value);
  }
  // HTTP/1.1 requires Host; node:http answers 400 without one.
  if (!sawHost) return undefined;
  return { method, target: text.slice(sp1 + 1, sp2), raw, close };
}
