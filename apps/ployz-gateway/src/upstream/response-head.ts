/**
 * The response-head parser of the lean upstream client: one complete HTTP/1.x response head in,
 * its status, framing facts and the places of its lines out. Strict where a smuggling proxy would
 * be lenient (RFC 9112): no folding, no whitespace before a colon, token names, no bare CR or LF,
 * one content-length value.
 */
import { isResponseHopByHop, nameIs } from '../forwarded-headers.ts';

const CLOSE = /close/i;
const KEEP_ALIVE = /keep-alive/i;
/** RFC 9110 §5.6.2 tchar, by char code (0–127). */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TCHAR[c.charCodeAt(0)] = 1;
/**
 * A control character a field value may not hold (RFC 9110 §5.5: only HTAB, SP, VCHAR and
 * obs-text), or a CR or LF that is not part of a line's CRLF: one scan over the whole head.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is its job
const BAD_HEAD_BYTE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;

/** A parsed response head: framing facts, and where its lines are in the text as received. */
export class ResponseHead {
  status = 0;
  minor = 1;
  contentLength = -1;
  chunked = false;
  close = false;
  keepAlive = false;
  invalid: string | undefined;
  /** A `Date` line is present. */
  hasDate = false;
  /** The head as received (latin1), without its final blank line. */
  readonly text: string;
  /** Where the status line ends (its CRLF). */
  statusLineEnd = 0;
  /** `[start, end)` of each hop-by-hop line (`isResponseHopByHop`), its leading CRLF included. */
  readonly hopLines: number[] = [];
  /** `[start, end)` of each Content-Length line, its leading CRLF included. */
  readonly lengthLines: number[] = [];
  #headers: string[] | undefined;

  constructor(text: string) {
    this.text = text;
  }

  /** Every header as a flat `[name, value, …]` list (values without surrounding whitespace). */
  get headers(): string[] {
    if (this.#headers !== undefined) return this.#headers;
    const text = this.text;
    const headers: string[] = [];
    let pos = this.statusLineEnd + 2;
    while (pos < text.length) {
      let end = text.indexOf('\r\n', pos);
      if (end === -1) end = text.length;
      const colon = text.indexOf(':', pos);
      headers.push(text.slice(pos, colon), text.slice(colon + 1, end).trim());
      pos = end + 2;
    }
    this.#headers = headers;
    return headers;
  }
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

/** A decimal of 1–15 digits at `text[start, end)` (optional whitespace around it), or -1. */
function decimal(text: string, start: number, end: number): number {
  let s = start;
  let e = end;
  while (s < e && isOws(text.charCodeAt(s))) s++;
  while (e > s && isOws(text.charCodeAt(e - 1))) e--;
  if (e <= s || e - s > 15) return -1;
  let n = 0;
  for (let i = s; i < e; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function invalid(head: ResponseHead, reason: string): ResponseHead {
  head.invalid = reason;
  return head;
}

/** Parses a response head (status line + header lines, without the final blank line). */
export function parseResponseHead(text: string): ResponseHead {
  const out = new ResponseHead(text);
  let eol = text.indexOf('\r\n');
  if (eol === -1) eol = text.length;
  out.statusLineEnd = eol;
  // HTTP/1.x SSS[ reason]
  if (
    eol < 12 ||
    !text.startsWith('HTTP/1.') ||
    text.charCodeAt(8) !== 32 ||
    (eol > 12 && text.charCodeAt(12) !== 32)
  )
    return invalid(out, 'malformed status line');
  out.minor = text.charCodeAt(7) - 48;
  const status = Number(text.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 999) return invalid(out, 'malformed status code');
  out.status = status;
  if (BAD_HEAD_BYTE.test(text)) return invalid(out, 'control character in the head');
  let pos = eol + 2;
  while (pos < text.length) {
    let end = text.indexOf('\r\n', pos);
    if (end === -1) end = text.length;
    const c = text.charCodeAt(pos);
    if (c === 32 || c === 9) return invalid(out, 'obsolete header folding');
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon >= end || colon === pos) return invalid(out, 'malformed header line');
    const last = text.charCodeAt(colon - 1);
    if (last === 32 || last === 9) return invalid(out, 'whitespace before colon');
    for (let i = pos; i < colon; i++) {
      if (TCHAR[text.charCodeAt(i)] !== 1) return invalid(out, 'header name that is not a token');
    }
    if (isResponseHopByHop(text, pos, colon)) out.hopLines.push(pos - 2, end);
    switch (colon - pos) {
      case 4:
        if (nameIs(text, pos, colon, 'date')) out.hasDate = true;
        break;
      case 10:
        if (nameIs(text, pos, colon, 'connection')) {
          if (nameIs(text, colon + 2, end, 'keep-alive')) {
            out.keepAlive = true;
          } else {
            const value = text.slice(colon + 1, end);
            if (CLOSE.test(value)) out.close = true;
            if (KEEP_ALIVE.test(value)) out.keepAlive = true;
          }
        }
        break;
      case 14:
        if (nameIs(text, pos, colon, 'content-length')) {
          const n = decimal(text, colon + 1, end);
          if (n === -1) return invalid(out, 'bad content-length');
          if (out.contentLength !== -1 && out.contentLength !== n)
            return invalid(out, 'conflicting content-length');
          out.contentLength = n;
          out.lengthLines.push(pos - 2, end);
        }
        break;
      case 17:
        if (nameIs(text, pos, colon, 'transfer-encoding')) {
          const codings = text
            .slice(colon + 1, end)
            .toLowerCase()
            .split(',');
          if (codings[codings.length - 1]?.trim() === 'chunked') out.chunked = true;
          else out.close = true; // not chunked last: close-delimited (RFC 9112 §6.3)
        }
        break;
    }
    pos = end + 2;
  }
  return out;
}
