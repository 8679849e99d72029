/**
 * A request without a body (or an upgrade request), forwarded through the lean upstream client
 * (upstream/pool.ts) to one backend after another until one answers or a failure is not retried
 * (retry.ts), and streamed to its client half: a node:http or node:http2 response (`NodeClient`),
 * a fast-path connection (front-http1.ts) or an upgrade's socket (tunnel.ts).
 */
import type http from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Backend, Route } from '@ployz/routing';
import { headerObject, scanResponseHeaders } from '../forwarded-headers.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { UpstreamError, UpstreamExchange, UpstreamHandler } from '../upstream/connection.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import type { ResponseHead } from '../upstream/response-head.ts';
import type { Balancer } from './balance.ts';
import { type OwnAnswer, sendError } from './replies.ts';
import { failureReply, INVALID_RESPONSE, isConnectFailure, isIdempotent, shouldRetry } from './retry.ts';

/** The client half of a bodyless exchange: the proxy drives it; it never throws. */
export interface ClientSide {
  /** The answer started (head queued or sent) or the client is gone: no own reply, no retry. */
  readonly committed: boolean;
  /**
   * The upstream answer's head (hop-by-hop lines still in it: the client side drops them).
   * `contentLength` is -1 when the length is unknown (re-frame).
   */
  sendHead(head: ResponseHead, contentLength: number): void;
  /** A body chunk; `last` completes the body. Returns false to pause until `exchange.resume()`. */
  sendData(chunk: Buffer, last: boolean, exchange: LeanExchange): boolean;
  /** The body is complete (also after `sendData(…, true)`). */
  sendEnd(): void;
  /** The upstream broke after the head was sent: cut the client connection. */
  abort(): void;
  /** The gateway's own short answer (`<status> <reason>`, replies.ts), e.g. 404, 502, 504. */
  reply(status: number, reason: string, own?: OwnAnswer): void;
}

/** What bodyless exchanges share: metrics, the balancer and the lean pool of each backend. */
export interface BodylessDeps {
  readonly metrics: GatewayMetrics;
  readonly balancer: Balancer;
  pool(backend: Backend): UpstreamPool;
}

/** An upstream request head from a flat header list (ends with the blank line). */
export function requestHead(method: string, path: string, headers: readonly string[]): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/** One bodyless request forwarded through the lean upstream client, with its retries. */
export class LeanExchange implements UpstreamHandler {
  readonly #deps: BodylessDeps;
  readonly #client: ClientSide;
  readonly #route: Route;
  readonly #method: string;
  readonly #head: string;
  /** The request asks to switch protocols (the only kind a `101` may answer). */
  readonly #upgrade: boolean;
  readonly #start: number;
  #attempt = 0;
  #sentAt = 0;
  #backend: Backend | undefined;
  /** The backends of the attempts so far (a retry goes to one not in it). */
  readonly #tried: Backend[] = [];
  #upstream: UpstreamExchange | undefined;

  constructor(
    deps: BodylessDeps,
    client: ClientSide,
    route: Route,
    method: string,
    head: string,
    upgrade = false,
  ) {
    this.#deps = deps;
    this.#client = client;
    this.#route = route;
    this.#method = method;
    this.#head = head;
    this.#upgrade = upgrade;
    this.#start = deps.balancer.start(route);
  }

  /** The current attempt's upstream exchange (a tunnel's other end after a `101`). */
  get upstream(): UpstreamExchange | undefined {
    return this.#upstream;
  }

  /** Sends the request to the backend of the current attempt. */
  send(): void {
    const backend = this.#deps.balancer.backend(this.#route, this.#start, this.#tried);
    this.#backend = backend;
    this.#tried.push(backend);
    this.#sentAt = performance.now();
    this.#upstream = this.#deps.pool(backend).request(this.#method, this.#head, this, this.#upgrade);
  }

  onHead(head: ResponseHead, contentLength: number): void {
    const metrics = this.#deps.metrics;
    const routeId = this.#route.id;
    metrics.upstreamLatency(routeId, (performance.now() - this.#sentAt) / 1000);
    metrics.request(routeId, head.status);
    try {
      this.#client.sendHead(head, contentLength);
    } catch {
      // node:http refused what the parser let through: that upstream connection goes, this client gets 502.
      this.#upstream?.abort();
      metrics.invalidResponse();
      metrics.request(routeId, 502);
      this.#client.reply(502, 'upstream sent an invalid response head');
    }
  }

  onData(chunk: Buffer, last: boolean): boolean {
    return this.#client.sendData(chunk, last, this);
  }

  onEnd(): void {
    this.#client.sendEnd();
  }

  onError(error: UpstreamError, responded: boolean): void {
    if (error.code === INVALID_RESPONSE) this.#deps.metrics.invalidResponse();
    if (responded) this.#client.abort();
    else this.#failed(error.code);
  }

  /** The client went away: drop the upstream exchange (its connection is closed). */
  cancel(): void {
    this.#upstream?.abort();
  }

  /** The client drained: read the upstream again. */
  resume(): void {
    this.#upstream?.resume();
  }

  /** Failed before any answer: retry on the next backend, or 502/504. */
  #failed(code: string): void {
    if (this.#client.committed) return;
    const { metrics, balancer } = this.#deps;
    if (isConnectFailure(code) && this.#backend !== undefined) balancer.markDown(this.#backend);
    if (isIdempotent(this.#method) && shouldRetry(code, this.#attempt, this.#route.backends.length)) {
      metrics.retry();
      this.#attempt += 1;
      this.send();
      return;
    }
    const { status, reason } = failureReply(code);
    metrics.upstreamError();
    metrics.request(this.#route.id, status);
    this.#client.reply(status, reason);
  }
}

/** node:http / node:http2 responses as the client half of a bodyless exchange. */
export class NodeClient implements ClientSide {
  readonly #res: http.ServerResponse | Http2ServerResponse;
  readonly #h2: boolean;
  #ended = false;
  constructor(res: http.ServerResponse | Http2ServerResponse, h2: boolean) {
    this.#res = res;
    this.#h2 = h2;
  }
  get committed(): boolean {
    return this.#res.headersSent || this.#res.destroyed;
  }
  sendHead(head: ResponseHead): void {
    const scan = scanResponseHeaders(head.headers);
    if (this.#h2) {
      (this.#res as Http2ServerResponse).writeHead(head.status, headerObject(scan.headers));
    } else {
      const r = this.#res as http.ServerResponse;
      if (scan.hasDate) r.sendDate = false;
      r.writeHead(head.status, scan.headers);
    }
  }
  sendData(chunk: Buffer, last: boolean, exchange: LeanExchange): boolean {
    const res = this.#res;
    const own = Buffer.from(chunk); // the chunk is the upstream's shared read buffer
    if (last) {
      this.#ended = true;
      res.end(own);
      return true;
    }
    if ((res as http.ServerResponse).write(own)) return true;
    res.once('drain', () => exchange.resume());
    return false;
  }
  sendEnd(): void {
    if (!this.#ended) this.#res.end();
  }
  abort(): void {
    this.#res.destroy();
  }
  reply(status: number, reason: string, own?: OwnAnswer): void {
    sendError(this.#res, status, reason, false, own);
  }
}
