import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { gatewayFor, rawBackend } from './harness.ts';

/** Writes `chunks` on one client connection (a pause between them), reads until the gateway ends it or `done`. */
function exchange(port: number, chunks: string[], done: (received: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', async () => {
      for (const [i, chunk] of chunks.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, 30));
        socket.write(chunk);
      }
    });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out; received so far:\n${JSON.stringify(received)}`));
    }, 5000);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    socket.on('data', (d: Buffer) => {
      received += d.toString('latin1');
      if (done(received)) finish();
    });
    socket.on('end', finish);
    socket.on('error', reject);
  });
}

async function counter(admin: string, name: string): Promise<number> {
  const text = await (await fetch(`${admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

const INVALID_LINES = [
  'X Bad: 1',
  'X-A: a\u0000b',
  'X-A: a\rInjected: 1',
  'X-A: a\nInjected: 1',
  'Bad\u00e9: 1',
];

const manyHeaders = Array.from({ length: 130 }, (_, i) => `x-h${i}: ${i}\r\n`).join('');
/** The ways a request reaches the upstream: the fast path and each node:http hand-off. */
const CLIENTS: Record<string, string[]> = {
  'fast path': ['GET /fast HTTP/1.1\r\nHost: example.com\r\n\r\n'],
  'HTTP/1.0': ['GET /old HTTP/1.0\r\nHost: example.com\r\n\r\n'],
  'split head': ['GET /split HTTP/1.1\r\nHo', 'st: example.com\r\n\r\n'],
  'over 128 headers': [`GET /many HTTP/1.1\r\nHost: example.com\r\n${manyHeaders}\r\n`],
  'with a body': ['POST /body HTTP/1.1\r\nHost: example.com\r\nContent-Length: 1\r\n\r\nx'],
};

describe('invalid upstream response heads', () => {
  it('answer 502 to that client on every path, close the upstream connection and count it', async () => {
    const closed: Promise<void>[] = [];
    let line = '';
    await using backend = await rawBackend((_head, socket) => {
      closed.push(new Promise((r) => socket.once('close', () => r())));
      socket.write(`HTTP/1.1 200 OK\r\n${line}\r\nContent-Length: 2\r\n\r\nok`);
    });
    await using g = await gatewayFor(backend.port);
    let count = 0;
    for (const bad of INVALID_LINES) {
      for (const [name, chunks] of Object.entries(CLIENTS)) {
        line = bad;
        const received = await exchange(g.gateway.httpPort, chunks, (r) => r.includes('invalid response'));
        expect(received, `${name}: ${JSON.stringify(bad)}`).toMatch(/^HTTP\/1\.1 502 /);
        expect(received).not.toContain('Injected');
        expect(received).not.toContain('X Bad');
        count += 1;
      }
    }
    expect(backend.requests.length).toBe(count);
    // every upstream connection that sent such a head was closed by the gateway
    await Promise.all(closed);
    expect(await counter(g.admin, 'ployz_gateway_upstream_invalid_responses_total')).toBe(count);
    // and the gateway still serves
    line = 'X-Good: 1';
    const ok = await exchange(g.gateway.httpPort, ['GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'], (r) =>
      r.endsWith('ok'),
    );
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
  });
});
