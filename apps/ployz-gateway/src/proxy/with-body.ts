/**
 * A request with a body, forwarded through undici to one backend (undici is loaded on the first
 * such request: RSS at idle). The body streams through as it arrives and is never replayed, so a
 * failure before any answer is a 502 or 504, never a retry. A body that stalls longer than
 * `bodyIdleTimeoutMs` is answered 408 and its connection closed.
 */
import type http from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { PassThrough } from 'node:stream';
import type { Backend, Route } from '@ployz/routing';
import type { Dispatcher, Pool } from 'undici';
import { headerObject, scanResponseHeaders } from '../forwarded-headers.ts';
import type { GatewayMetrics } from '../metrics.ts';
import type { Balancer } from './balance.ts';
import { sendError } from './replies.ts';
import { errorCode, failureReply, INVALID_RESPONSE, isConnectFailure } from './retry.ts';

export type Undici = typeof import('undici');
let undici: Undici | undefined;
let loadingUndici: Promise<Undici> | undefined;
function loadUndici(): Promise<Undici> {
  loadingUndici ??= import('undici').then((m) => {
    undici = m;
    return m;
  });
  return loadingUndici;
}

/** What exchanges with a body share: metrics, the balancer and the undici pool of each backend. */
export interface WithBodyDeps {
  readonly metrics: GatewayMetrics;
  readonly balancer: Balancer;
  readonly bodyIdleTimeoutMs: number;
  pool(backend: Backend, undici: Undici): Pool;
}

/** One request with a body, forwarded through undici. */
export class BodyExchange {
  readonly #deps: WithBodyDeps;
  readonly #req: http.IncomingMessage | Http2ServerRequest;
  readonly #res: http.ServerResponse | Http2ServerResponse;
  readonly #route: Route;
  readonly #method: string;
  readonly #path: string;
  readonly #headers: string[];
  readonly #h2: boolean;
  #responded = false;
  #controller: Dispatcher.DispatchController | undefined;

  constructor(
    deps: WithBodyDeps,
    req: http.IncomingMessage | Http2ServerRequest,
    res: http.ServerResponse | Http2ServerResponse,
    route: Route,
    method: string,
    path: string,
    headers: string[],
  ) {
    this.#deps = deps;
    this.#req = req;
    this.#res = res;
    this.#route = route;
    this.#method = method;
    this.#path = path;
    this.#headers = headers;
    this.#h2 = req.httpVersionMajor === 2;
  }

  /** Sends the request (its body as it arrives) and watches the body for stalls. */
  start(): void {
    const balancer = this.#deps.balancer;
    this.#forward(balancer.backend(this.#route, balancer.start(this.#route), []));
    this.#watchBodyIdle();
  }

  /** The client closed the connection: the upstream request is aborted. */
  cancel(): void {
    this.#controller?.abort(new Error('client closed the connection'));
  }

  #forward(backend: Backend): void {
    const sentAt = performance.now();
    const metrics = this.#deps.metrics;
    const res = this.#res;
    const routeId = this.#route.id;
    // A pass-through, so a failed upstream never destroys the client's request (and socket).
    const body = new PassThrough();
    this.#req.pipe(body);
    let drainWaiting = false;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart: (controller) => {
        this.#controller = controller;
        if (res.destroyed) controller.abort(new Error('client closed the connection'));
      },
      onResponseStart: (controller, statusCode) => {
        this.#responded = true;
        metrics.upstreamLatency(routeId, (performance.now() - sentAt) / 1000);
        metrics.request(routeId, statusCode);
        const scan = scanResponseHeaders(controller.rawHeaders);
        try {
          if (this.#h2) {
            (res as Http2ServerResponse).writeHead(statusCode, headerObject(scan.headers));
          } else {
            const r = res as http.ServerResponse;
            if (scan.hasDate) r.sendDate = false;
            r.writeHead(statusCode, scan.headers);
          }
        } catch {
          this.#responded = false;
          metrics.invalidResponse();
          this.#fail(502, 'upstream sent an invalid response head');
          controller.abort(new Error('invalid upstream response head'));
        }
      },
      onResponseData: (controller, chunk) => {
        if (!this.#responded) return;
        if (!(res as http.ServerResponse).write(chunk) && !drainWaiting) {
          drainWaiting = true;
          controller.pause();
          res.once('drain', () => {
            drainWaiting = false;
            controller.resume();
          });
        }
      },
      onResponseEnd: () => {
        if (this.#responded) res.end();
      },
      onResponseError: (_controller, error) => {
        if (this.#responded) {
          res.destroy();
          return;
        }
        this.#failed(backend, errorCode(error));
      },
    };
    const dispatch = (u: Undici) => {
      try {
        this.#deps
          .pool(backend, u)
          .dispatch({ path: this.#path, method: this.#method, headers: this.#headers, body }, handler);
      } catch (error) {
        metrics.upstreamError();
        this.#fail(502, `upstream request refused (${errorCode(error)})`);
      }
    };
    if (undici !== undefined) dispatch(undici);
    else
      loadUndici().then(dispatch, (error: unknown) => {
        metrics.upstreamError();
        this.#fail(502, `upstream client unavailable (${errorCode(error)})`);
      });
  }

  /** Failed before any answer: 502 or 504 (the body is not replayed). */
  #failed(backend: Backend, code: string): void {
    const res = this.#res;
    // Already answered by the gateway itself (e.g. 408), or the client is gone.
    if (res.headersSent || res.destroyed) return;
    const metrics = this.#deps.metrics;
    if (isConnectFailure(code)) this.#deps.balancer.markDown(backend);
    metrics.upstreamError();
    if (code === INVALID_RESPONSE) metrics.invalidResponse();
    this.#req.unpipe();
    this.#req.resume();
    const { status, reason } = failureReply(code);
    this.#fail(status, reason);
  }

  #watchBodyIdle(): void {
    const req = this.#req;
    const timer = setTimeout(() => {
      this.#fail(408, 'request body idle too long', true);
      this.#controller?.abort(new Error('request body idle'));
      req.socket?.destroy();
    }, this.#deps.bodyIdleTimeoutMs);
    req.on('data', () => timer.refresh());
    req.once('end', () => clearTimeout(timer));
    this.#res.once('close', () => clearTimeout(timer));
  }

  /** The gateway's own answer (`close`: the connection closes after it), or a cut if too late. */
  #fail(status: number, reason: string, close = false): void {
    if (this.#res.headersSent) {
      this.#res.destroy();
      return;
    }
    this.#deps.metrics.request(this.#route.id, status);
    sendError(this.#res, status, reason, close);
  }
}
