/**
 * The client half of an upgrade request (WebSocket and other HTTP/1.1 upgrades), on the raw socket
 * node:http handed over. Nothing the client sends after its request is read until the backend
 * answers: a `101` opens the tunnel (with the bytes that followed the request, then both ways
 * unparsed until either side ends); any other answer is written as an ordinary response and the
 * connection closes, so bytes after a refused upgrade never reach the backend unrouted.
 */
import type { Duplex } from 'node:stream';
import { scanResponseHeaders } from '../forwarded-headers.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { ResponseHead } from '../upstream/response-head.ts';
import type { ClientSide, LeanExchange } from './bodyless.ts';
import { closingErrorResponse, statusLine } from './replies.ts';

export class UpgradeClient implements ClientSide {
  readonly #socket: Duplex;
  readonly #early: Buffer;
  readonly #metrics: GatewayMetrics;
  exchange: LeanExchange | undefined;
  committed = false;
  #chunked = false;
  constructor(socket: Duplex, early: Buffer, metrics: GatewayMetrics) {
    this.#socket = socket;
    this.#early = early;
    this.#metrics = metrics;
    socket.pause(); // nothing the client sends next is read before the backend switched
  }
  sendHead(head: ResponseHead, contentLength: number): void {
    this.committed = true;
    const socket = this.#socket;
    const status = head.status;
    const headers = scanResponseHeaders(head.headers).headers;
    let out = statusLine(status);
    for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`;
    if (status === 101) {
      const raw = head.headers;
      let protocol = '';
      for (let i = 0; i < raw.length; i += 2)
        if ((raw[i] as string).toLowerCase() === 'upgrade') protocol = raw[i + 1] as string;
      socket.write(`${out}Connection: Upgrade\r\nUpgrade: ${protocol}\r\n\r\n`);
      this.#metrics.upgrade();
      this.#tunnel();
      return;
    }
    const bodyless = status === 204 || status === 304;
    this.#chunked = contentLength === -1 && !bodyless;
    if (this.#chunked) {
      // the length is unknown: re-framed, and a stray content-length must not survive
      out = out.replace(/\r\ncontent-length:[^\r]*/gi, '');
      out += 'Transfer-Encoding: chunked\r\n';
    }
    socket.write(`${out}Connection: close\r\n\r\n`);
  }
  /** Client → upstream bytes once switched (those read with the request head first). */
  #tunnel(): void {
    const socket = this.#socket;
    const upstream = this.exchange?.upstream;
    if (upstream === undefined) return;
    const resumeClient = () => socket.resume();
    const forward = (data: Buffer) => {
      if (!upstream.write(data, resumeClient)) socket.pause();
    };
    if (this.#early.length > 0) forward(this.#early);
    socket.on('data', forward);
    socket.once('end', () => upstream.end());
    socket.resume();
  }
  sendData(chunk: Buffer, last: boolean, exchange: LeanExchange): boolean {
    const own = Buffer.from(chunk); // the chunk is the upstream's shared read buffer
    const socket = this.#socket;
    let ok: boolean;
    if (this.#chunked) {
      socket.write(`${own.length.toString(16)}\r\n`);
      socket.write(own);
      ok = socket.write(last ? '\r\n0\r\n\r\n' : '\r\n');
      if (last) this.#chunked = false;
    } else {
      ok = socket.write(own);
    }
    if (ok || last) return true;
    socket.once('drain', () => exchange.resume());
    return false;
  }
  sendEnd(): void {
    if (this.#chunked) this.#socket.write('0\r\n\r\n');
    this.#chunked = false;
    this.#socket.end();
  }
  abort(): void {
    this.#socket.destroy();
  }
  reply(status: number, reason: string): void {
    const socket = this.#socket;
    if (socket.destroyed) return;
    if (this.committed) {
      socket.destroy();
      return;
    }
    this.committed = true;
    socket.end(closingErrorResponse(status, reason));
  }
}
