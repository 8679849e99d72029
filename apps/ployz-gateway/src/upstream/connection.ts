/**
 * One keep-alive connection of the lean upstream client (over node:net) and the handle of the
 * exchange it serves: writes a request head, reads the answer's head (skipping 1xx, refusing a
 * `101` nobody asked for) and streams its body — content-length, chunked (chunked.ts) or
 * close-delimited; none for HEAD, 204 and 304 — pausing the socket while the consumer is slow.
 * After an asked-for `101` the connection is a tunnel: bytes pass both ways unparsed.
 */
import net from 'node:net';
import { ChunkedDecoder, type ChunkedSink } from './chunked.ts';
import { parseResponseHead, type ResponseHead } from './response-head.ts';

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

/** Handle to cancel an exchange (client gone). */
export interface UpstreamExchange {
  abort(): void;
  resume(): void;
  /**
   * After a `101` to an upgrade request: client bytes for the tunnel. False when they wait in the
   * socket's buffer; `onDrain` is called once it drained.
   */
  write(data: Buffer, onDrain: () => void): boolean;
  /** The client half-closed the tunnel. */
  end(): void;
}

/** Where a connection goes, and how long it may take to get there. */
export interface ConnectionOptions {
  host: string;
  port: number;
  connectTimeoutMs: number;
}

/** What a connection tells the pool that owns it. */
export interface ConnectionOwner {
  readonly options: ConnectionOptions;
  /** The connection finished an exchange (`reusable`: it may serve the next) or closed. */
  release(conn: Connection, reusable: boolean): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Every upstream read lands here; each read is parsed before the next one can happen. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

enum Body {
  None = 0,
  Length = 1,
  Chunked = 2,
  Close = 3,
}

/** A request waiting for (or handed to) a connection. */
export interface Pending {
  head: string;
  method: string;
  /** An upgrade request: a `101` switches the connection into a tunnel (else it is refused). */
  upgrade: boolean;
  handler: UpstreamHandler;
  exchange: Exchange | undefined;
}

/** The handle of one exchange, first queued in the pool, then served by one connection. */
export class Exchange implements UpstreamExchange {
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
  write(data: Buffer, onDrain: () => void): boolean {
    const conn = this.conn;
    if (conn === undefined || conn.exchange !== this || !conn.tunnel) return true;
    conn.active = true;
    if (conn.socket.write(data)) return true;
    conn.socket.once('drain', onDrain);
    return false;
  }
  end(): void {
    const conn = this.conn;
    if (conn !== undefined && conn.exchange === this && conn.tunnel) conn.socket.end();
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

/** One upstream keep-alive connection. */
export class Connection {
  readonly socket: net.Socket;
  readonly #owner: ConnectionOwner;
  connected = false;
  /** Served at least one exchange (a failure before any byte may be a stale keep-alive close). */
  reused = false;
  exchange: Exchange | undefined;
  handler: UpstreamHandler = NOOP_HANDLER;
  method = 'GET';
  upgrade = false;
  /** Switched protocols (101): bytes pass both ways unparsed until either side ends. */
  tunnel = false;
  #buf: Buffer | undefined;
  #headStarted = false;
  #responded = false;
  #body: Body = Body.None;
  #remaining = 0;
  readonly #chunked = new ChunkedDecoder();
  readonly #chunkedSink: ChunkedSink;
  #reusable = true;
  #paused = false;
  #done = false;
  /** Read or wrote since the pool's last sweep. */
  active = true;
  /** How long the connection has been silent, as counted by the sweeps. */
  silentMs = 0;
  #connectTimer: NodeJS.Timeout | undefined;

  constructor(owner: ConnectionOwner) {
    this.#owner = owner;
    const options = owner.options;
    this.#chunkedSink = {
      data: (part) => this.#push(part),
      end: (extra) => {
        if (extra) this.#reusable = false;
        this.#finish();
      },
      fail: (message) => this.#fail('UPSTREAM_PROTOCOL', message),
      live: () => this.exchange !== undefined,
    };
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
    this.upgrade = pending.upgrade;
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
    this.#owner.release(this, false);
    if (this.exchange !== undefined) this.#fail('ECONNRESET', 'upstream connection closed');
  }

  /** `onread` callback: true keeps reading (pausing is #push's job). */
  #read(n: number, buf: Uint8Array): boolean {
    this.active = true;
    try {
      this.#onData(
        buf === READ_BUFFER ? READ_BUFFER.subarray(0, n) : Buffer.from(buf.buffer, buf.byteOffset, n),
      );
    } catch (error) {
      // The exchange's boundary: whatever broke ends this exchange and connection, not the process.
      if (this.exchange !== undefined) this.#fail('GATEWAY_ERROR', String(error));
      else this.socket.destroy();
    }
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
      if (head.status === 101) {
        if (!this.upgrade) {
          this.#fail('UPSTREAM_PROTOCOL', 'upstream switched protocols for a request that did not ask');
          return;
        }
        // The tunnel: what follows the head is the new protocol's, passed on as a close-delimited body.
        pos = end;
        this.#responded = true;
        this.tunnel = true;
        this.#reusable = false;
        this.#body = Body.Close;
        this.#owner.release(this, false);
        this.handler.onHead(head, -1);
        if (this.exchange === undefined) return;
        break;
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
        this.#chunked.reset();
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
        this.#chunked.decode(buf, this.#chunkedSink);
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
      this.#owner.release(this, true);
    } else {
      this.socket.destroy();
      this.#owner.release(this, false);
    }
    handler.onEnd();
  }
}
