/**
 * The gateway's HTTP/1.1 fast path: plain bodyless requests are read and answered straight on the
 * client socket (no IncomingMessage, ServerResponse or stream pipeline per request); everything
 * else — bodies, upgrades, HTTP/1.0, split or unusual heads — is handed with its bytes to the
 * node:http server, which then owns the connection for good. See
 * docs/adr/0008-gateway-fast-path.md.
 */
import type { Socket } from 'node:net';
import type { GatewayMetrics } from './metrics.ts';
import type { ClientSide, LeanExchange } from './proxy/bodyless.ts';
import { errorResponse, type OwnAnswer, statusLine } from './proxy/replies.ts';
import type { Proto, ReverseProxy } from './proxy.ts';
import { parsePlainRequestHead } from './request-head.ts';
import type { ResponseHead } from './upstream/response-head.ts';

export interface FrontLimits {
  /** Heads longer than this go to node:http (which answers 431). */
  maxHeaderBytes: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** A client that does not read an answer for this long is cut. */
  writeStallMs: number;
}

export interface FrontOptions {
  proxy: ReverseProxy;
  /** What X-Forwarded-Proto says: the listener is plain HTTP or TLS (HTTP/1.1 by ALPN). */
  proto: Proto;
  metrics: GatewayMetrics;
  limits: FrontLimits;
  /** node:http's own connection listener: takes over a socket for good. */
  handOff(socket: Socket): void;
}

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const LAST_CHUNK = '0\r\n\r\n';

/** Two sorted lists of `[start, end)` ranges as one sorted list. */
function mergeRanges(a: readonly number[], b: readonly number[]): number[] {
  if (b.length === 0) return a as number[];
  const pairs: [number, number][] = [];
  for (const list of [a, b])
    for (let i = 0; i < list.length; i += 2) pairs.push([list[i] as number, list[i + 1] as number]);
  pairs.sort((x, y) => x[0] - y[0]);
  return pairs.flat();
}

/** `Date:` value, refreshed by the sweeper (one-second resolution, like node:http's). */
let httpDate = new Date().toUTCString();

/** Accepts sockets, serves their plain requests, hands the rest to node:http. */
export class Http1Front {
  readonly options: FrontOptions;
  readonly #connections = new Set<FrontConnection>();
  #timer: NodeJS.Timeout | undefined;
  #closing = false;
  readonly #sweepMs: number;
  constructor(options: FrontOptions) {
    this.options = options;
    const { keepAliveTimeoutMs, writeStallMs } = options.limits;
    this.#sweepMs = Math.min(1000, Math.max(10, Math.floor(Math.min(keepAliveTimeoutMs, writeStallMs) / 4)));
  }

  get connections(): number {
    return this.#connections.size;
  }

  accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    this.#timer ??= setInterval(() => this.#sweep(), this.#sweepMs).unref();
    this.#connections.add(new FrontConnection(this, socket));
  }

  forget(conn: FrontConnection): void {
    this.#connections.delete(conn);
  }

  handOff(conn: FrontConnection, socket: Socket): void {
    this.#connections.delete(conn);
    this.options.metrics.handOff();
    this.options.handOff(socket);
  }

  /** Shutdown, step 1: no new requests; idle connections close now, busy ones after their answer. */
  closeIdle(): void {
    this.#closing = true;
    for (const conn of this.#connections) conn.closeWhenIdle();
  }

  /** Shutdown, step 2: cut what is left. */
  destroyAll(): void {
    this.#closing = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    for (const conn of this.#connections) conn.destroy();
    this.#connections.clear();
  }

  #sweep(): void {
    httpDate = new Date().toUTCString();
    const now = performance.now();
    const { keepAliveTimeoutMs, writeStallMs } = this.options.limits;
    for (const conn of this.#connections) conn.sweep(now, this.#sweepMs, keepAliveTimeoutMs, writeStallMs);
  }
}

/** A fast-path client socket names its connection (undefined once handed to node:http). */
const CONNECTION = Symbol('ployz-gateway.front-connection');
type FrontSocket = Socket & { [CONNECTION]?: FrontConnection | undefined };

/** One client connection on the fast path; it is the client half of its current exchange. */
class FrontConnection implements ClientSide {
  readonly #front: Http1Front;
  readonly #socket: Socket;
  /** Bytes read but not yet parsed (a pipelined request). */
  #buffered: Buffer | undefined;
  #exchange: LeanExchange | undefined;
  #busy = false;
  #processing = false;
  #closeAfter = false;
  #closeWhenIdle = false;
  #isHead = false;
  /** Head of the answer, held so head and first body bytes leave in one write. */
  #head: string | undefined;
  #chunked = false;
  #committed = false;
  /** Read or answered since the last sweep; else the sweeps add up how long it sat idle. */
  #active = true;
  #idleMs = 0;
  #stalledSince = 0;
  // The socket's listeners are shared by every connection (`this` is the socket, which names its
  // connection): no closures per connection (issue 22: 10,000 idle keep-alive clients).
  static readonly #onData = function (this: FrontSocket, chunk: Buffer): void {
    const conn = this[CONNECTION];
    if (conn !== undefined) conn.#read(chunk);
  };
  static readonly #onClose = function (this: FrontSocket): void {
    const conn = this[CONNECTION];
    if (conn !== undefined) conn.#closed();
  };
  static readonly #onError = function (this: FrontSocket): void {
    this.destroy();
  };
  /**
   * The client sent FIN. Like node:http (and nginx), a request still being answered counts as
   * abandoned: its upstream exchange is dropped rather than held for a peer that may be gone.
   */
  static readonly #onEnd = function (this: FrontSocket): void {
    const conn = this[CONNECTION];
    if (conn !== undefined && (conn.#busy || conn.#buffered !== undefined)) this.destroy();
    else this.end();
  };
  static readonly #onDrain = function (this: FrontSocket): void {
    const conn = this[CONNECTION];
    if (conn === undefined) return;
    conn.#stalledSince = 0;
    conn.#exchange?.resume();
  };

  constructor(front: Http1Front, socket: Socket) {
    this.#front = front;
    this.#socket = socket;
    (socket as FrontSocket)[CONNECTION] = this;
    socket.on('data', FrontConnection.#onData);
    socket.on('close', FrontConnection.#onClose);
    socket.on('error', FrontConnection.#onError);
    socket.on('end', FrontConnection.#onEnd);
  }

  get committed(): boolean {
    return this.#committed || this.#socket.destroyed;
  }

  /** The connection closes after the current answer (the client asked, or the gateway is shutting down). */
  get #closesAfterAnswer(): boolean {
    return this.#closeAfter || this.#closeWhenIdle;
  }

  /**
   * Shutdown: a busy connection closes after its answer; an idle one once it has been idle for a
   * whole sweep. Closing it at once raced a request the client was writing on it — a keep-alive
   * client saw a reset during a replace-beside drain (docs/adr/0014-replace-beside.md); its next
   * request is answered with `connection: close` instead.
   */
  closeWhenIdle(): void {
    this.#closeWhenIdle = true;
    if (!this.#busy && !this.#active) this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  sweep(now: number, sweepMs: number, keepAliveTimeoutMs: number, writeStallMs: number): void {
    if (this.#closeWhenIdle && !this.#active && !this.#busy) {
      this.#socket.destroy();
      return;
    }
    if (this.#active || this.#busy) {
      this.#active = false;
      this.#idleMs = 0;
    } else {
      this.#idleMs += sweepMs;
      if (this.#idleMs >= keepAliveTimeoutMs) this.#socket.destroy();
    }
    // A client that does not read its answer cannot hold the connection (and its upstream).
    if (this.#busy && this.#stalledSince !== 0 && now - this.#stalledSince > writeStallMs) {
      this.#socket.destroy();
    }
  }

  #read(chunk: Buffer): void {
    this.#active = true;
    if (this.#buffered !== undefined) {
      this.#buffered = Buffer.concat([this.#buffered, chunk]);
    } else {
      this.#buffered = chunk;
    }
    if (this.#busy) {
      // Pipelined bytes wait for the current answer; stop reading if they pile up.
      if (this.#buffered.length > this.#front.options.limits.maxHeaderBytes) this.#socket.pause();
      return;
    }
    this.#process();
  }

  /** Serves complete plain requests from the buffer, one at a time. */
  #process(): void {
    if (this.#processing) return;
    this.#processing = true;
    try {
      while (!this.#busy && this.#buffered !== undefined && !this.#socket.destroyed) {
        const data = this.#buffered;
        const end = data.indexOf(HEAD_END);
        const head =
          end === -1 || end > this.#front.options.limits.maxHeaderBytes
            ? undefined
            : parsePlainRequestHead(data.toString('latin1', 0, end));
        if (head === undefined) {
          this.#handOff(data);
          return;
        }
        this.#buffered = end + 4 < data.length ? data.subarray(end + 4) : undefined;
        this.#busy = true;
        this.#committed = false;
        this.#head = undefined;
        this.#chunked = false;
        this.#isHead = head.method === 'HEAD';
        this.#closeAfter = head.close || this.#closeWhenIdle;
        const options = this.#front.options;
        try {
          this.#exchange = options.proxy.serveFast(this, head, this.#socket.remoteAddress, options.proto);
        } catch {
          // The exchange's boundary: a bug or a peer's bytes end this connection, not the process.
          this.#socket.destroy();
          return;
        }
      }
    } finally {
      this.#processing = false;
    }
  }

  /** node:http takes the connection with the bytes not yet served (nothing is in flight). */
  #handOff(data: Buffer): void {
    const socket = this.#socket;
    socket.off('data', FrontConnection.#onData);
    socket.off('close', FrontConnection.#onClose);
    socket.off('error', FrontConnection.#onError);
    socket.off('drain', FrontConnection.#onDrain);
    socket.off('end', FrontConnection.#onEnd);
    (socket as FrontSocket)[CONNECTION] = undefined;
    this.#buffered = undefined;
    socket.unshift(data);
    this.#front.handOff(this, socket);
    if (socket.isPaused()) socket.resume();
  }

  sendHead(head: ResponseHead, contentLength: number): void {
    this.#committed = true;
    const status = head.status;
    const bodyless = this.#isHead || status === 204 || status === 304;
    // Unknown length: re-framed as chunked, and a stray content-length must not survive.
    const chunked = contentLength === -1 && !bodyless;
    // The upstream's header lines as received, less the hop-by-hop ones (and the length when
    // re-framing): copied as slices of the received text, nothing re-parsed or re-joined.
    const text = head.text;
    const skip = chunked ? mergeRanges(head.hopLines, head.lengthLines) : head.hopLines;
    let out = statusLine(status);
    let pos = head.statusLineEnd + 2;
    for (let i = 0; i < skip.length; i += 2) {
      const start = skip[i] as number;
      if (start + 2 > pos) out += text.slice(pos, start + 2);
      pos = Math.max(pos, (skip[i + 1] as number) + 2);
    }
    if (pos < text.length) out += `${text.slice(pos)}\r\n`;
    if (!head.hasDate) out += `Date: ${httpDate}\r\n`;
    if (chunked) out += 'Transfer-Encoding: chunked\r\n';
    if (this.#closesAfterAnswer) out += 'Connection: close\r\n';
    this.#chunked = chunked;
    this.#head = `${out}\r\n`;
  }

  sendData(chunk: Buffer, last: boolean): boolean {
    let out: Buffer;
    if (this.#chunked) {
      const prefix = `${this.#takeHead()}${chunk.length.toString(16)}\r\n`;
      const suffix = last ? `\r\n${LAST_CHUNK}` : '\r\n';
      out = Buffer.allocUnsafe(prefix.length + chunk.length + suffix.length);
      out.write(prefix, 0, 'latin1');
      chunk.copy(out, prefix.length);
      out.write(suffix, prefix.length + chunk.length, 'latin1');
      if (last) this.#chunked = false;
    } else if (this.#head !== undefined) {
      const head = this.#takeHead();
      out = Buffer.allocUnsafe(head.length + chunk.length);
      out.write(head, 0, 'latin1');
      chunk.copy(out, head.length);
    } else {
      out = Buffer.from(chunk); // the chunk is the upstream's shared read buffer
    }
    if (this.#socket.write(out)) return true;
    if (last) return true;
    this.#stalledSince = performance.now();
    this.#socket.once('drain', FrontConnection.#onDrain);
    return false;
  }

  #takeHead(): string {
    const head = this.#head ?? '';
    this.#head = undefined;
    return head;
  }

  sendEnd(): void {
    if (this.#head !== undefined || this.#chunked) {
      const tail = this.#chunked ? LAST_CHUNK : '';
      this.#socket.write(`${this.#takeHead()}${tail}`, 'latin1');
      this.#chunked = false;
    }
    this.#done();
  }

  abort(): void {
    this.#socket.destroy();
  }

  reply(status: number, reason: string, own?: OwnAnswer): void {
    if (this.#socket.destroyed) {
      this.#done();
      return;
    }
    if (this.#committed) {
      this.#socket.destroy();
      return;
    }
    this.#committed = true;
    this.#socket.write(errorResponse(status, reason, this.#closesAfterAnswer, httpDate, own));
    this.#done();
  }

  /** The answer is fully written (queued): next request, or close. */
  #done(): void {
    if (!this.#busy) return;
    this.#busy = false;
    this.#exchange = undefined;
    this.#stalledSince = 0;
    this.#active = true;
    this.#front.options.proxy.settled();
    if (this.#closesAfterAnswer) {
      this.#socket.end();
      return;
    }
    if (this.#socket.isPaused()) this.#socket.resume();
    if (this.#buffered !== undefined) this.#process();
  }

  #closed(): void {
    this.#front.forget(this);
    if (this.#busy) {
      const exchange = this.#exchange;
      this.#busy = false;
      this.#exchange = undefined;
      this.#front.options.proxy.settled();
      exchange?.cancel();
    }
  }
}
