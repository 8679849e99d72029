import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Backend, gatewayFor, type RunningGateway, startBackend, testConfig } from './harness.ts';

interface Reply {
  status: number;
  /** Header fields by lowercased name. */
  headers: Map<string, string>;
  body: string;
  /** The gateway closed the connection after the reply. */
  closed: boolean;
}

/**
 * Sends `text` and reads one reply (head, then a body of its Content-Length). `closed` tells
 * whether the gateway then closed the connection: it is given `settleMs` to do so.
 */
function ask(port: number, text: string, settleMs = 150): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
    let received = '';
    let reply: Reply | undefined;
    let settle: NodeJS.Timeout | undefined;
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete reply; received:\n${received}`));
    }, 10_000);
    const finish = (closed: boolean) => {
      if (reply === undefined) return;
      clearTimeout(guard);
      clearTimeout(settle);
      socket.destroy();
      resolve({ ...reply, closed });
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (reply !== undefined || end === -1) return;
      const [statusLine = '', ...lines] = received.slice(0, end).split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      const body = received.slice(end + 4);
      if (body.length < Number(headers.get('content-length') ?? 0)) return;
      reply = { status: Number(statusLine.split(' ')[1]), headers, body, closed: false };
      settle = setTimeout(() => finish(false), settleMs);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => undefined);
  });
}

/** What every answer of the gateway's own says, whichever path wrote it. */
function expectOwnReply(reply: Reply, status: number, reason: string): void {
  expect(reply.status).toBe(status);
  expect(reply.body).toBe(`${status} ${reason}\n`);
  expect(reply.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  expect(reply.headers.get('content-length')).toBe(String(Buffer.byteLength(reply.body)));
  expect(reply.headers.get('x-ployz-gateway')).toBe('error');
  expect(reply.headers.get('date')).toMatch(/ GMT$/);
  // Connection: close is said exactly when the gateway closes.
  expect(reply.headers.get('connection') === 'close').toBe(reply.closed);
}

describe("the gateway's own replies", () => {
  let web: Backend;
  let g: RunningGateway;
  let port: number;

  beforeAll(async () => {
    web = await startBackend('web');
    g = await gatewayFor(web.port, testConfig({ bodyIdleTimeoutMs: 300 }));
    port = g.gateway.httpPort;
  });

  afterAll(async () => {
    await g?.[Symbol.asyncDispose]();
    await web?.[Symbol.asyncDispose]();
  });

  const NO_ROUTE = 'no route for this host and path';

  it('on the fast path: the same fields, Connection: close only when the client asked', async () => {
    const kept = await ask(port, 'GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n');
    expectOwnReply(kept, 404, NO_ROUTE);
    expect(kept.closed).toBe(false);
    const closing = await ask(port, 'GET / HTTP/1.1\r\nHost: nowhere.test\r\nConnection: close\r\n\r\n');
    expectOwnReply(closing, 404, NO_ROUTE);
    expect(closing.closed).toBe(true);
  });

  it('through node:http: the same fields, and Connection: close with the 408 after which it closes', async () => {
    const kept = await ask(port, 'POST / HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: 2\r\n\r\nhi');
    expectOwnReply(kept, 404, NO_ROUTE);
    expect(kept.closed).toBe(false);
    const stalled = await ask(
      port,
      'POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\nonly ten b',
      1000,
    );
    expectOwnReply(stalled, 408, 'request body idle too long');
    expect(stalled.closed).toBe(true);
  });

  it('on raw sockets that close after it: refused upgrades and malformed requests', async () => {
    const upgrade = await ask(
      port,
      'GET /ws HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    expectOwnReply(upgrade, 404, NO_ROUTE);
    expect(upgrade.closed).toBe(true);
    const garbage = await ask(port, 'GET / HTTP/1.1\r\nHo st: x\r\n\r\n');
    expectOwnReply(garbage, 400, 'malformed request');
    expect(garbage.closed).toBe(true);
  });
});
