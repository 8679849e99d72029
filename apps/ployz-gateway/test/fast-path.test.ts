import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { gatewayFor, rawBackend, rawClient, startBackend, testConfig } from './harness.ts';

/** A client connection driven step by step: send, then read until a predicate holds. */
function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1');
  let received = '';
  let waiter: (() => void) | undefined;
  let ended = false;
  socket.on('data', (d: Buffer) => {
    received += d.toString('latin1');
    waiter?.();
  });
  socket.on('end', () => {
    ended = true;
    waiter?.();
  });
  socket.on('close', () => {
    ended = true;
    waiter?.();
  });
  socket.on('error', () => undefined);
  return {
    socket,
    send(text: string) {
      socket.write(text, 'latin1');
    },
    get ended() {
      return ended;
    },
    /** Resolves with everything received once `done(received)` holds (or rejects after 5 s). */
    until(done: (r: string) => boolean): Promise<string> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out; received:\n${received}`)), 5000);
        waiter = () => {
          if (!done(received)) return;
          clearTimeout(timer);
          waiter = undefined;
          resolve(received);
        };
        waiter();
      });
    },
    closed(): Promise<void> {
      return this.until(() => ended).then(() => undefined);
    },
  };
}

const count = (text: string, what: RegExp) => (text.match(what) ?? []).length;
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: example.com\r\n${extra}\r\n`;
const post = (path: string, body: string) =>
  `POST ${path} HTTP/1.1\r\nHost: example.com\r\nContent-Length: ${body.length}\r\n\r\n${body}`;

async function handedOff(admin: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  return Number(/^ployz_gateway_handed_off_connections_total (\d+)$/m.exec(text)?.[1]);
}

describe('the HTTP/1.1 fast path', () => {
  it('serves plain requests itself and hands a body to node:http on the same connection', async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port);
    const c = connect(g.gateway.httpPort);
    c.send(get('/one'));
    const first = await c.until((r) => r.includes('"url":"/one"'));
    expect(first).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(first).toMatch(/\r\nDate: /i);
    expect(await handedOff(g.admin)).toBe(0);

    c.send(post('/two', 'hello'));
    const second = await c.until((r) => r.includes('"url":"/two"'));
    expect(second).toContain('"body":"hello"');
    expect(await handedOff(g.admin)).toBe(1);

    c.send(get('/three'));
    await c.until((r) => r.includes('"url":"/three"'));
    expect(c.ended).toBe(false);
    c.socket.destroy();
  });

  it('answers pipelined plain and body requests in order, across the hand-off', async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port);
    const received = await rawClient(
      g.gateway.httpPort,
      get('/a') + get('/b') + post('/c', 'xyz') + get('/d'),
      (r) => count(r, /HTTP\/1\.1 200/g) === 4 && r.includes('"url":"/d"'),
    );
    const urls = [...received.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual(['/a', '/b', '/c', '/d']);
    expect(received).toContain('"body":"xyz"');
  });

  it('hands a head split across reads to node:http, which serves it', async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port);
    const c = connect(g.gateway.httpPort);
    c.send('GET /split HTTP/1.1\r\nHo');
    await new Promise((r) => setTimeout(r, 50));
    c.send('st: example.com\r\n\r\n');
    const answer = await c.until((r) => r.includes('"url":"/split"'));
    expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(await handedOff(g.admin)).toBe(1);
    c.socket.destroy();
  });

  it('closes after answering `Connection: close`, and when an idle client half-closes', async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port);
    const c = connect(g.gateway.httpPort);
    c.send(get('/bye', 'Connection: close\r\n'));
    await c.closed();
    const answer = await c.until(() => true);
    expect(answer).toContain('"url":"/bye"');
    expect(answer).toContain('Connection: close\r\n');

    const h = connect(g.gateway.httpPort);
    h.send(get('/half'));
    await h.until((r) => r.includes('"url":"/half"'));
    h.socket.end();
    await h.closed();
    expect(h.ended).toBe(true);
  });

  it("keeps the connection after the gateway's own 404 and 503", async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port);
    const c = connect(g.gateway.httpPort);
    c.send('GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n');
    const notFound = await c.until((r) => r.endsWith('no route for this host and path\n'));
    expect(notFound).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
    expect(notFound).toContain('X-Ployz-Gateway: error');
    c.send(get('/after'));
    await c.until((r) => r.includes('"url":"/after"'));
    expect(c.ended).toBe(false);
    c.socket.destroy();
  });

  it('never forwards both a length and chunked framing', async () => {
    await using backend = await rawBackend((_head, socket) => {
      // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which must not be forwarded.
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
      );
    });
    await using g = await gatewayFor(backend.port);
    const received = await rawClient(g.gateway.httpPort, get('/'), (r) => r.endsWith('0\r\n\r\n'));
    const head = received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toContain('transfer-encoding: chunked');
    expect(head).not.toContain('content-length');
    expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('3\r\nabc\r\n0\r\n\r\n');
  });

  it('answers with the same headers as the node:http path, hop-by-hop lines dropped wherever they are', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write(
        'HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n' +
          'Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nTransfer-Encoding: chunked\r\nX-B:  2 \r\n' +
          'Proxy-Connection: x\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      );
    });
    await using g = await gatewayFor(backend.port);
    const headersOf = (answer: string) =>
      answer
        .slice(answer.indexOf('\r\n') + 2, answer.indexOf('\r\n\r\n'))
        .split('\r\n')
        .map((line) => line.toLowerCase().replace(/:\s*/, ': ').trim())
        .filter((line) => !line.startsWith('date:'))
        .sort();
    const fast = await rawClient(g.gateway.httpPort, get('/'), (r) => r.endsWith('0\r\n\r\n'));
    const viaNode = await rawClient(g.gateway.httpPort, post('/', 'x'), (r) => r.endsWith('0\r\n\r\n'));
    expect(await handedOff(g.admin)).toBe(1); // the POST went through node:http
    expect(headersOf(fast)).toEqual([
      'set-cookie: a=1',
      'set-cookie: b=2',
      'transfer-encoding: chunked',
      'x-a: 1',
      'x-b: 2',
    ]);
    // node:http adds its own keep-alive lines for the client connection; the rest must match.
    const own = (line: string) => !line.startsWith('connection:') && !line.startsWith('keep-alive:');
    expect(headersOf(viaNode).filter(own)).toEqual(headersOf(fast));
    expect(fast.slice(fast.indexOf('\r\n\r\n') + 4)).toBe('5\r\nhello\r\n0\r\n\r\n');
  });

  it('closes idle keep-alive connections after the keep-alive timeout', async () => {
    await using backend = await startBackend('b1');
    await using g = await gatewayFor(backend.port, testConfig({ keepAliveTimeoutMs: 200 }));
    const c = connect(g.gateway.httpPort);
    c.send(get('/idle'));
    await c.until((r) => r.includes('"url":"/idle"'));
    await c.closed();
    expect(c.ended).toBe(true);
  });

  it('cuts a client that stops reading a large answer, and releases the request', async () => {
    const body = Buffer.alloc(32 << 20, 'x');
    await using backend = await startBackend('big', (_req, res) => {
      res.setHeader('content-length', body.length);
      res.end(body);
    });
    await using g = await gatewayFor(
      backend.port,
      testConfig({ headersTimeoutMs: 300, requestTimeoutMs: 300, upstreamTimeoutMs: 300 }),
    );
    const socket = net.connect(g.gateway.httpPort, '127.0.0.1', () => socket.write(get('/big')));
    socket.on('error', () => undefined);
    socket.pause(); // never reads
    await expect.poll(() => g.gateway.proxy.inFlight, { timeout: 3000 }).toBe(1);
    await expect.poll(() => g.gateway.proxy.inFlight, { timeout: 5000 }).toBe(0);
    socket.destroy();
  });

  it('drops the upstream exchange when the client closes or half-closes mid-request', async () => {
    let upstreamClosed = false;
    await using backend = await rawBackend((_head, socket) => {
      socket.once('close', () => {
        upstreamClosed = true;
      });
      // never answers
    });
    await using g = await gatewayFor(backend.port);
    const c = connect(g.gateway.httpPort);
    c.send(get('/slow'));
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(1);
    c.socket.destroy();
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(0);
    await expect.poll(() => upstreamClosed).toBe(true);

    upstreamClosed = false;
    const h = connect(g.gateway.httpPort);
    h.send(get('/slow'));
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(1);
    h.socket.end(); // FIN only
    await h.closed();
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(0);
    await expect.poll(() => upstreamClosed).toBe(true);
  });
});
