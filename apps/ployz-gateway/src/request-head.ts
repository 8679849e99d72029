/**
 * A strict parser for the plain HTTP/1.1 request heads the gateway's fast path serves: origin-form
 * target, `HTTP/1.1`, token header names, no body, no upgrade, no `Expect`. It never rejects a
 * request itself: anything it does not accept (`undefined`) is handed, bytes intact, to node:http
 * (llhttp), which answers or refuses it as before. So the fast path can only be *narrower* than
 * node:http, never more lenient (see docs/adr/0008-gateway-fast-path.md).
 */
import http from 'node:http';
import {
  LINE_FORWARDED_FOR,
  LINE_KEEP,
  LINE_REWRITE,
  nameIs,
  requestLinePolicy,
} from './forwarded-headers.ts';

export interface PlainRequestHead {
  method: string;
  /** Origin-form target (`/path?query`). */
  target: string;
  /** The head as received (latin1), without its final blank line. */
  text: string;
  /** The Host header's value. */
  host: string;
  /** The client asked to close after this exchange (`Connection: close`). */
  close: boolean;
  /**
   * No line needs the full rewrite (`requestLinePolicy`) and there is one Host: the head can be
   * forwarded as received less the `drop` lines, plus the X-Forwarded-* lines (`plainUpstreamHead`).
   */
  verbatim: boolean;
  /** `[start, end)` of each line to leave out (hop-by-hop, X-Forwarded-*), its leading CRLF included. */
  drop: number[];
  /** The X-Forwarded-For values received, joined with `, ` (undefined when none). */
  forwardedFor: string | undefined;
}

const METHODS = new Set(http.METHODS);
const UPGRADE = /upgrade/i;
const CLOSE = /close/i;
const OWS = /^[ \t]+|[ \t]+$/g;

/** Most header lines the fast path takes (node:http keeps the unusual ones). */
const MAX_PLAIN_HEADERS = 128;
const MAX_METHOD = 16;
/** Origin-form target: `/` then visible ASCII, no `#` (a fragment is never sent on the wire). */
const TARGET = /\/[\x21\x22\x24-\x7e]*/y;
/**
 * The header block, whole: each line an RFC 9110 token name, a colon, then a value of HTAB,
 * visible ASCII, SP or obs-text (no other control byte, so no bare CR or LF), lines joined by
 * CRLF. One compiled scan instead of a check per character.
 */
const HEADER_LINES = /(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*(?:\r\n|$))*$/y;

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
  if (sp1 <= 0 || sp1 > MAX_METHOD) return undefined;
  const sp2 = text.indexOf(' ', sp1 + 1);
  if (sp2 === -1 || sp2 >= eol) return undefined;
  TARGET.lastIndex = sp1 + 1;
  if (!TARGET.test(text) || TARGET.lastIndex !== sp2) return undefined;
  if (eol - sp2 !== 9 || !text.startsWith('HTTP/1.1', sp2 + 1)) return undefined;
  const method = text.slice(0, sp1);
  // node:http (llhttp) knows a fixed list of methods and refuses the others; CONNECT is node's
  // `connect` event (answered 405 there), never a request to route.
  if (!METHODS.has(method) || method === 'CONNECT') return undefined;
  if (eol < text.length) {
    HEADER_LINES.lastIndex = eol + 2;
    if (!HEADER_LINES.test(text)) return undefined;
  }
  let host: string | undefined;
  let hosts = 0;
  let close = false;
  let verbatim = true;
  const drop: number[] = [];
  let forwardedFor: string | undefined;
  let sawLength = false;
  let lines = 0;
  let pos = eol + 2;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    // Lines are well-formed (HEADER_LINES): the first colon ends the name.
    const colon = text.indexOf(':', pos);
    let vs = colon + 1;
    let ve = end;
    while (vs < ve && isWhitespace(text.charCodeAt(vs))) vs++;
    while (ve > vs && isWhitespace(text.charCodeAt(ve - 1))) ve--;
    if (++lines > MAX_PLAIN_HEADERS) return undefined;
    switch (colon - pos) {
      case 4:
        if (nameIs(text, pos, colon, 'host')) {
          hosts += 1;
          host ??= text.slice(vs, ve);
        }
        break;
      case 6:
        if (nameIs(text, pos, colon, 'expect')) return undefined;
        break;
      case 7:
        if (nameIs(text, pos, colon, 'upgrade')) return undefined;
        break;
      case 10:
        if (nameIs(text, pos, colon, 'connection')) {
          const value = text.slice(vs, ve);
          if (UPGRADE.test(value)) return undefined;
          if (CLOSE.test(value)) close = true;
        }
        break;
      case 14:
        if (nameIs(text, pos, colon, 'content-length')) {
          // Only an explicit empty body stays here; any body goes to node:http + undici.
          if (sawLength || ve - vs !== 1 || text.charCodeAt(vs) !== 48 /* 0 */) return undefined;
          sawLength = true;
        }
        break;
      case 17:
        if (nameIs(text, pos, colon, 'transfer-encoding')) return undefined;
        break;
    }
    if (verbatim) {
      const policy = requestLinePolicy(text, pos, colon, vs, ve);
      if (policy === LINE_REWRITE) {
        verbatim = false;
      } else if (policy !== LINE_KEEP) {
        drop.push(pos - 2, end);
        if (policy === LINE_FORWARDED_FOR) {
          const value = text.slice(vs, ve);
          forwardedFor = forwardedFor === undefined ? value : `${forwardedFor}, ${value}`;
        }
      }
    }
    pos = end + 2;
  }
  // HTTP/1.1 requires Host; node:http answers 400 without one.
  if (host === undefined) return undefined;
  if (hosts > 1) verbatim = false;
  return { method, target: text.slice(sp1 + 1, sp2), text, host, close, verbatim, drop, forwardedFor };
}

/** The head's header lines as a flat `[name, value, …]` list (values without surrounding whitespace). */
export function plainRawHeaders(head: PlainRequestHead): string[] {
  const text = head.text;
  const raw: string[] = [];
  let pos = text.indexOf('\r\n') + 2;
  while (pos > 1 && pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    const colon = text.indexOf(':', pos);
    raw.push(text.slice(pos, colon), text.slice(colon + 1, end).replace(OWS, ''));
    pos = end + 2;
  }
  return raw;
}
