import { describe, expect, it } from 'vitest';
import { gatewayFor, rawBackend, rawClient, request } from './harness.ts';

describe('upstream framing through the gateway', () => {
  it('answers pipelined client requests in order', async () => {
    await using backend = await rawBackend((head, socket) => {
      const path = head.split(' ')[1] ?? '';
      // answer later requests sooner: order must still follow the client's
      const delay = path === '/1' ? 30 : path === '/2' ? 10 : 0;
      setTimeout(
        () => socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${path.length}\r\n\r\n${path}`),
        delay,
      );
    });
    await using g = await gatewayFor(backend.port);
    const req = (p: string) => `GET ${p} HTTP/1.1\r\nhost: example.com\r\n\r\n`;
    const received = await rawClient(
      g.gateway.httpPort,
      req('/1') + req('/2') + req('/3'),
      (r) => (r.match(/HTTP\/1\.1 200/g) ?? []).length === 3 && r.endsWith('/3'),
    );
    const bodies = received
      .split('HTTP/1.1 200 OK')
      .slice(1)
      .map((part) => part.slice(part.indexOf('\r\n\r\n') + 4));
    expect(bodies).toEqual(['/1', '/2', '/3']);
  });

  it('forwards chunked upstream bodies (trailers dropped) and close-delimited bodies', async () => {
    await using backend = await rawBackend((head, socket) => {
      if (head.includes('/chunked')) {
        socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-kind: chunked\r\n\r\n4\r\nwiki\r\n');
        setTimeout(() => socket.write('5\r\npedia\r\n0\r\nx-trailer: 1\r\n\r\n'), 10);
      } else {
        socket.write('HTTP/1.1 200 OK\r\nx-kind: close\r\n\r\nuntil ');
        setTimeout(() => socket.end('eof'), 10);
      }
    });
    await using g = await gatewayFor(backend.port);
    const chunked = await request(g.url, { path: '/chunked' });
    expect(chunked).toMatchObject({ status: 200, body: 'wikipedia' });
    expect(chunked.headers['x-kind']).toBe('chunked');
    expect(chunked.headers['x-trailer']).toBeUndefined();
    const closed = await request(g.url, { path: '/close' });
    expect(closed).toMatchObject({ status: 200, body: 'until eof' });
    expect(closed.headers['x-kind']).toBe('close');
  });

  it('answers HEAD with the upstream length and no body, then serves the next request', async () => {
    await using backend = await rawBackend((head, socket) => {
      if (head.startsWith('HEAD')) socket.write('HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 12\r\n\r\nhello world\n');
    });
    await using g = await gatewayFor(backend.port);
    const received = await rawClient(
      g.gateway.httpPort,
      'HEAD / HTTP/1.1\r\nhost: example.com\r\n\r\nGET / HTTP/1.1\r\nhost: example.com\r\n\r\n',
      (r) => r.endsWith('hello world\n'),
    );
    const answers = received.split('HTTP/1.1 200 OK').slice(1);
    expect(answers).toHaveLength(2);
    expect(answers[0]).toMatch(/content-length: 12\r\n/i);
    expect((answers[0] as string).endsWith('\r\n\r\n')).toBe(true);
    expect(answers[1]).toMatch(/\r\n\r\nhello world\n$/);
  });

  it('cuts the client response when the upstream closes mid-body', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial');
      setTimeout(() => socket.destroy(), 20);
    });
    await using g = await gatewayFor(backend.port);
    const received = await rawClient(
      g.gateway.httpPort,
      'GET / HTTP/1.1\r\nhost: example.com\r\n\r\n',
      () => false,
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(received).toMatch(/content-length: 100\r\n/i);
    // the client sees the connection end before the 100 promised bytes
    expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('partial');
  });

  it('answers 502 on a malformed upstream head', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nx');
    });
    await using g = await gatewayFor(backend.port);
    const answer = await request(g.url);
    expect(answer.status).toBe(502);
    expect(answer.body).toBe('502 upstream sent an invalid response (UPSTREAM_PROTOCOL)\n');
  });

  it('retries an idempotent request when the backend closes before answering; never a POST', async () => {
    let closes = 1;
    await using backend = await rawBackend((_head, socket) => {
      if (closes > 0) {
        closes -= 1;
        socket.destroy();
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
    });
    await using g = await gatewayFor(backend.port);
    expect(await request(g.url)).toMatchObject({ status: 200, body: 'ok' });
    closes = 1;
    const post = await request(g.url, { method: 'POST' });
    expect(post.status).toBe(502);
    // never replayed: the answer names the close (on a fresh or a reused connection)
    expect(post.body).toMatch(/^502 upstream failed \((UPSTREAM_CLOSED|ECONNRESET)\)\n$/);
  });
});
