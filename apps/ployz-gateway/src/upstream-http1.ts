/**
 * A lean HTTP/1.1 upstream client over node:net for requests without a body: one keep-alive pool
 * per backend (LIFO idle list), one request at a time per connection, a small response-head
 * parser and a streaming body decoder (content-length, chunked with trailers, close-delimited;
 * no body for HEAD, 1xx, 204 and 304). Requests with a body go through undici instead (see
 * docs/adr/0007-gateway-proxy-core.md).
 */
import net from 'node:net';
import { isResponseHopByHop, nameIs } from './forwarded-headers.ts';

/** Error with a stable `code` the proxy maps to 502/504 and retry decisions. */
export class UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** What one exchange hears from its upstream connection. */
export interface UpstreamHandler {
  /**
   * Response head (after any 1xx interim answers). `contentLength` is the body length, or -1 when
   * unknown (chunked, close-delimited, or the answer to HEAD).
   */
  onHead(head: ResponseHead, contentLength: number): void;
  /**
   * A body chunk. `last` is true when it completes the body (so the caller can end in one write).
   * Return false to pause reading until `resume()`. The chunk is a view of the shared read buffer:
   * valid during this call only — copy what must outlive it (a socket write that does not finish
   * at once keeps its buffer).
   */
  onData(chunk: Buffer, last: boolean): boolean;
  /** Body complete (called after `onData(…, true)` too, or alone for empty bodies). */
  onEnd(): void;
  /** The exchange failed. `responded` tells whether `onHead` was already called. */
  onError(error: UpstreamError, responded: boolean): void;
}

export interface UpstreamPoolOptions {
  host: string;
  port: number;
  /** Most open connections; further requests wait for a free one. */
  connections: number;
  connectTimeoutMs: number;
  /** Upstream silent longer than this while a request is outstanding → UPSTREAM_TIMEOUT. */
  timeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveMs: number;
}

/** Handle to cancel an exchange (client gone). */
export interface UpstreamExchange {
  abort(): void;
  resume(): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const CLOSE = /close/i;
const KEEP_ALIVE = /keep-alive/i;
/** Every upstream read lands here; each read is parsed before the next one can happen. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);
const CRLF = 0x0a0d;

enum Body {
  None = 0,
  Length = 1,
  Chunked = 2,
  Close = 3,
}

enum Chunk {
  Size = 0,
  Data = 1,
  DataEnd = 2,
  Trailers = 3,
}

interface Pending {
  head: string;
  method: string;
  handler: UpstreamHandler;
  exchange: Exchange | undefined;
}

class Exchange implements UpstreamExchange {
  conn: Connection | undefined;
  pending: Pending | undefined;
  aborted = false;
  constructor(pending: Pending) {
    this.pending = pending;
  }
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    if (this.conn !== undefined) this.conn.abort(this);
    else if (this.pending !== undefined) this.pending.handler = NOOP_HANDLER;
  }
  resume(): void {
    this.conn?.resumeFor(this);
  }
}

const NOOP_HANDLER: UpstreamHandler = {
  onHead() {},
  onData() {
    return true;
  },
  onEnd() {},
  onError() {},
};

/** Finds `\r\n\r\n` in `buf` from `from`; returns the index after it or -1. */
function headEnd(buf: Buffer, from: number): number {
  let i = buf.indexOf(HEAD_END, from);
  if (i === -1) return -1;
  i += 4;
  return i;
}

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

/** One upstream keep-alive connection. */
class Connection {
  readonly socket: net.Socket;
  readonly pool: UpstreamPool;
  connected = false;
  /** Served at least one exchange (a failure before any byte may be a stale keep-alive close). */
  reused = false;
  exchange: Exchange | undefined;
  handler: UpstreamHandler = NOOP_HANDLER;
  method = 'GET';
  #buf: Buffer | undefined;
  #headStarted = false;
  #responded = false;
  #body: Body = Body.None;
  #remaining = 0;
  #chunk: Chunk = Chunk.Size;
  #reusable = true;
  #paused = false;
  #done = false;
  /** Read or wrote since the pool's last sweep. */
  active = true;
  /** How long the connection has been silent, as counted by the sweeps. */
  silentMs = 0;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(pool: UpstreamPool) {
    this.pool = pool;
    const options = pool.options;
    // Reads land in one shared buffer and come straight to #onData: no Buffer allocated per read
    // and no Readable stream in between (the parser consumes each read synchronously).
    this.socket = net.connect({
      host: options.host,
      port: options.port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.#read(n, buf) },
    });
    this.#connectTimer = setTimeout(() => {
      this.socket.destroy(new UpstreamError('ECONNTIMEOUT', 'upstream connect timed out'));
    }, options.connectTimeoutMs);
    this.socket.once('connect', () => {
      clearTimeout(this.#connectTimer);
      this.connected = true;
      this.active = true;
    });
    this.socket.on('end', () => this.#onEnd());
    this.socket.on('error', (error: Error & { code?: string }) => this.#onSocketError(error));
    this.socket.on('close', () => this.#onClose());
  }

  start(exchange: Exchange, pending: Pending): void {
    this.exchange = exchange;
    exchange.conn = this;
    exchange.pending = undefined;
    this.handler = pending.handler;
    this.method = pending.method;
    this.#headStarted = false;
    this.#responded = false;
    this.#done = false;
    this.#body = Body.None;
    this.#buf = undefined;
    this.#reusable = true;
    this.active = true;
    this.socket.write(pending.head, 'latin1');
  }

  abort(exchange: Exchange): void {
    if (this.exchange !== exchange) return;
    this.handler = NOOP_HANDLER;
    this.exchange = undefined;
    this.socket.destroy();
  }

  resumeFor(exchange: Exchange): void {
    if (this.exchange !== exchange || !this.#paused) return;
    this.#paused = false;
    this.active = true;
    this.socket.resume();
  }

  /** Waiting for the client to drain: the upstream's silence is not the upstream's fault. */
  get paused(): boolean {
    return this.#paused;
  }

  #fail(code: string, message: string): void {
    const handler = this.handler;
    const responded = this.#responded;
    this.handler = NOOP_HANDLER;
    this.exchange = undefined;
    this.socket.destroy();
    handler.onError(new UpstreamError(code, message), responded);
  }

  /** The sweep found the connection silent too long (idle: keep-alive over; busy: upstream timeout). */
  timedOut(): void {
    if (this.exchange === undefined) {
      // idle keep-alive connection timed out
      this.socket.destroy();
      return;
    }
    this.#fail('UPSTREAM_TIMEOUT', 'upstream silent too long');
  }

  #onEnd(): void {
    if (this.exchange === undefined) {
      this.socket.destroy();
      return;
    }
    if (this.#responded && this.#body === Body.Close) {
      this.#finish();
      this.socket.destroy();
      return;
    }
    if (!this.#headStarted) {
      this.#fail(this.reused ? 'ECONNRESET' : 'UPSTREAM_CLOSED', 'upstream closed before answering');
      return;
    }
    this.#fail('UPSTREAM_CLOSED', 'upstream closed mid-response');
  }

  #onSocketError(error: Error & { code?: string }): void {
    clearTimeout(this.#connectTimer);
    if (this.exchange === undefined) return;
    const code = error.code ?? 'UPSTREAM_SOCKET';
    this.#fail(code, error.message);
  }

  #onClose(): void {
    clearTimeout(this.#connectTimer);
    this.pool.release(this, false);
    if (this.exchange !== undefined) this.#fail('ECONNRESET', 'upstream connection closed');
  }

  /** `onread` callback: true keeps reading (pausing is #push's job). */
  #read(n: number, buf: Uint8Array): boolean {
    this.active = true;
    this.#onData(
      buf === READ_BUFFER ? READ_BUFFER.subarray(0, n) : Buffer.from(buf.buffer, buf.byteOffset, n),
    );
    return true;
  }

  #onData(data: Buffer): void {
    if (this.exchange === undefined) {
      // Bytes nobody asked for: the connection is out of step.
      this.socket.destroy();
      return;
    }
    this.#headStarted = true;
    let buf = data;
    let pos = 0;
    while (!this.#responded) {
      if (this.#buf !== undefined) {
        buf = Buffer.concat([this.#buf, buf]);
        this.#buf = undefined;
      }
      const end = headEnd(buf, 0);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) {
          this.#fail('UPSTREAM_PROTOCOL', 'upstream response head too large');
          return;
        }
        this.#buf = Buffer.from(buf);
        return;
      }
      const head = parseResponseHead(buf.toString('latin1', 0, end - 4));
      if (head.invalid !== undefined) {
        this.#fail('UPSTREAM_PROTOCOL', `upstream sent a ${head.invalid}`);
        return;
      }
      if (head.status < 200) {
        // interim (100, 103): skip and read the final answer
        buf = buf.subarray(end);
        if (buf.length === 0) return;
        continue;
      }
      pos = end;
      this.#responded = true;
      if (head.minor === 0 ? !head.keepAlive : head.close) this.#reusable = false;
      let contentLength = head.contentLength;
      if (this.method === 'HEAD' || head.status === 204 || head.status === 304) {
        this.#body = Body.None;
        contentLength = this.method === 'HEAD' ? -1 : 0;
      } else if (head.chunked) {
        this.#body = Body.Chunked;
        this.#chunk = Chunk.Size;
        this.#remaining = 0;
      } else if (head.contentLength !== -1 && !head.close) {
        this.#body = head.contentLength === 0 ? Body.None : Body.Length;
        this.#remaining = head.contentLength;
      } else if (head.contentLength !== -1) {
        this.#body = head.contentLength === 0 ? Body.None : Body.Length;
        this.#remaining = head.contentLength;
      } else {
        this.#body = Body.Close;
        this.#reusable = false;
      }
      this.handler.onHead(head, this.#body === Body.Chunked ? -1 : contentLength);
      if (this.exchange === undefined) return; // aborted from onHead
      if (this.#body === Body.None) {
        if (pos < buf.length) this.#reusable = false;
        this.#finish();
        return;
      }
    }
    if (pos < buf.length) this.#onBody(pos === 0 ? buf : buf.subarray(pos));
  }

  #onBody(buf: Buffer): void {
    switch (this.#body) {
      case Body.Length: {
        if (buf.length >= this.#remaining) {
          const last = buf.length === this.#remaining ? buf : buf.subarray(0, this.#remaining);
          if (buf.length > this.#remaining) this.#reusable = false;
          this.#remaining = 0;
          this.handler.onData(last, true);
          this.#finish();
          return;
        }
        this.#remaining -= buf.length;
        this.#push(buf);
        return;
      }
      case Body.Close:
        this.#push(buf);
        return;
      case Body.Chunked:
        this.#onChunked(buf);
        return;
      case Body.None:
        this.#reusable = false;
        return;
    }
  }

  #push(chunk: Buffer): void {
    if (!this.handler.onData(chunk, false) && !this.#paused && this.exchange !== undefined) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  #onChunked(input: Buffer): void {
    let buf = input;
    if (this.#buf !== undefined) {
      buf = Buffer.concat([this.#buf, buf]);
      this.#buf = undefined;
    }
    let pos = 0;
    while (pos < buf.length && this.exchange !== undefined) {
      switch (this.#chunk) {
        case Chunk.Size: {
          const eol = buf.indexOf(CRLF_BYTES, pos);
          if (eol === -1) {
            if (buf.length - pos > 1024) {
              this.#fail('UPSTREAM_PROTOCOL', 'chunk size line too long');
              return;
            }
            this.#buf = Buffer.from(buf.subarray(pos));
            return;
          }
          let size = 0;
          let digits = 0;
          let i = pos;
          for (; i < eol; i++) {
            const c = buf[i] as number;
            const d =
              c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
            if (d === -1) break;
            size = size * 16 + d;
            digits += 1;
          }
          const stop = buf[i];
          if (digits === 0 || digits > 12 || (i < eol && stop !== 59 /* ; */ && stop !== 32 && stop !== 9)) {
            this.#fail('UPSTREAM_PROTOCOL', 'upstream sent a malformed chunk size');
            return;
          }
          pos = eol + 2;
          if (size === 0) {
            this.#chunk = Chunk.Trailers;
          } else {
            this.#remaining = size;
            this.#chunk = Chunk.Data;
          }
          break;
        }
        case Chunk.Data: {
          const take = Math.min(this.#remaining, buf.length - pos);
          const part = buf.subarray(pos, pos + take);
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#chunk = Chunk.DataEnd;
          this.#push(part);
          break;
        }
        case Chunk.DataEnd: {
          if (buf.length - pos < 2) {
            this.#buf = Buffer.from(buf.subarray(pos));
            return;
          }
          if (buf.readUInt16LE(pos) !== CRLF) {
            this.#fail('UPSTREAM_PROTOCOL', 'upstream chunk not followed by CRLF');
            return;
          }
          pos += 2;
          this.#chunk = Chunk.Size;
          break;
        }
        case Chunk.Trailers: {
          // Trailer fields are dropped (node:http cannot forward undeclared trailers); an empty
          // line ends the message.
          const eol = buf.indexOf(CRLF_BYTES, pos);
          if (eol === -1) {
            if (buf.length - pos > MAX_HEAD_BYTES) {
              this.#fail('UPSTREAM_PROTOCOL', 'upstream trailers too large');
              return;
            }
            this.#buf = Buffer.from(buf.subarray(pos));
            return;
          }
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) {
            if (pos < buf.length) this.#reusable = false;
            this.#finish();
            return;
          }
          break;
        }
      }
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    const handler = this.handler;
    this.handler = NOOP_HANDLER;
    this.exchange = undefined;
    this.reused = true;
    this.#buf = undefined;
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    if (this.#reusable) {
      this.active = true;
      this.pool.release(this, true);
    } else {
      this.socket.destroy();
      this.pool.release(this, false);
    }
    handler.onEnd();
  }
}

const CRLF_BYTES = Buffer.from('\r\n', 'latin1');

/** Keep-alive connections to one backend. */
export class UpstreamPool {
  readonly options: UpstreamPoolOptions;
  readonly #idle: Connection[] = [];
  readonly #all = new Set<Connection>();
  readonly #queue: { exchange: Exchange; pending: Pending }[] = [];
  #closed = false;
  #sweeper: NodeJS.Timeout | undefined;
  readonly #sweepMs: number;

  constructor(options: UpstreamPoolOptions) {
    this.options = options;
    // Silence is measured by a sweep over the pool rather than a timer per socket (a socket
    // timeout is re-armed on every read and write): a timeout fires within one sweep after it is due.
    this.#sweepMs = Math.min(
      1000,
      Math.max(10, Math.floor(Math.min(options.timeoutMs, options.keepAliveMs) / 4)),
    );
  }

  #open(): Connection {
    const conn = new Connection(this);
    this.#all.add(conn);
    this.#sweeper ??= setInterval(() => this.#sweep(), this.#sweepMs).unref();
    return conn;
  }

  #sweep(): void {
    const { timeoutMs, keepAliveMs } = this.options;
    for (const conn of this.#all) {
      if (conn.active || conn.paused || !conn.connected) {
        conn.active = false;
        conn.silentMs = 0;
        continue;
      }
      conn.silentMs += this.#sweepMs;
      if (conn.silentMs >= (conn.exchange === undefined ? keepAliveMs : timeoutMs)) conn.timedOut();
    }
    if (this.#all.size === 0) this.#stopSweeping();
  }

  #stopSweeping(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  get size(): number {
    return this.#all.size;
  }

  /** Sends `head` (a complete request head, ending with a blank line) and reports to `handler`. */
  request(method: string, head: string, handler: UpstreamHandler): UpstreamExchange {
    const pending: Pending = { head, method, handler, exchange: undefined };
    const exchange = new Exchange(pending);
    if (this.#closed) {
      queueMicrotask(() => handler.onError(new UpstreamError('UPSTREAM_CLOSED', 'pool closed'), false));
      return exchange;
    }
    let conn = this.#idle.pop();
    while (conn?.socket.destroyed) conn = this.#idle.pop();
    if (conn === undefined) {
      if (this.#all.size >= this.options.connections) {
        this.#queue.push({ exchange, pending });
        return exchange;
      }
      conn = this.#open();
    }
    conn.start(exchange, pending);
    return exchange;
  }

  /** A connection finished an exchange (`reusable`) or closed. */
  release(conn: Connection, reusable: boolean): void {
    if (!reusable) {
      if (!this.#all.delete(conn)) return;
      const i = this.#idle.indexOf(conn);
      if (i !== -1) this.#idle.splice(i, 1);
    }
    // hand the connection (or a fresh one) to the next queued request
    while (this.#queue.length > 0) {
      const next = this.#queue.shift() as { exchange: Exchange; pending: Pending };
      if (next.exchange.aborted) continue;
      if (reusable && !this.#closed) {
        conn.start(next.exchange, next.pending);
        return;
      }
      if (this.#closed) {
        next.pending.handler.onError(new UpstreamError('UPSTREAM_CLOSED', 'pool closed'), false);
        continue;
      }
      const fresh = this.#open();
      fresh.start(next.exchange, next.pending);
      return;
    }
    if (reusable) {
      if (this.#closed) conn.socket.destroy();
      else this.#idle.push(conn);
    }
  }

  /** Closes idle connections now and the others once their exchange ends. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#idle) conn.socket.destroy();
    this.#idle.length = 0;
  }

  /** Closes every connection now. */
  destroy(): void {
    this.#closed = true;
    for (const conn of this.#all) conn.socket.destroy();
    this.#all.clear();
    this.#idle.length = 0;
    this.#stopSweeping();
  }
}
