import net from 'node:net';
import { MemoryRoutingFeed } from '@ployz/routing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  instance,
  machine,
  type RunningGateway,
  release,
  request,
  revision,
  runGateway,
  startBackend,
  testConfig,
} from './harness.ts';

/** Sends raw bytes, returns everything the gateway answers until it closes (or `waitMs`). */
function raw(
  port: number,
  chunks: (string | Buffer)[],
  waitMs = 2000,
  gapMs = 0,
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let text = '';
    let closed = false;
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, waitMs);
    void (async () => {
      for (const chunk of chunks) {
        if (socket.destroyed) return;
        socket.write(chunk);
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      }
    })();
  });
}

describe('hostile and malformed clients', () => {
  let web: Backend;
  let slow: Backend;
  let g: RunningGateway;

  beforeAll(async () => {
    web = await startBackend('web');
    slow = await startBackend('slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('tick\n'), 50);
      res.on('close', () => clearInterval(timer));
    });
    const i = instance('w-0', 'web', 0, web.port);
    const s = instance('s-0', 'slow', 0, slow.port, 'rev-eeeeeeeeeeeeeeee');
    const gone = instance('g-0', 'gone', 0, 1, 'rev-ffffffffffffffff');
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [
        revision('web', [{ hostnames: ['example.com'] }]),
        revision('slow', [{ hostnames: ['slow.test'] }], 'rev-eeeeeeeeeeeeeeee'),
        revision('gone', [{ hostnames: ['gone.test'] }], 'rev-ffffffffffffffff'),
      ],
      releases: [
        release('web', [i]),
        release('slow', [s], 'rev-eeeeeeeeeeeeeeee'),
        release('gone', [gone], 'rev-ffffffffffffffff'),
      ],
      instances: [i, s, gone],
    });
    g = await runGateway(
      feed,
      testConfig({
        headersTimeoutMs: 500,
        requestTimeoutMs: 1500,
        bodyIdleTimeoutMs: 300,
        maxHeaderBytes: 4096,
      }),
    );
    await g.gateway.follower.waitForSeq(0, 5000);
  });

  afterAll(async () => {
    await g?.[Symbol.asyncDispose]();
    await web?.[Symbol.asyncDispose]();
    await slow?.[Symbol.asyncDispose]();
  });

  async function stillServes(): Promise<void> {
    const answer = await request(g.url);
    expect(answer.status).toBe(200);
  }

  it('answers 431 to oversized headers', async () => {
    const r = await raw(g.gateway.httpPort, [
      `GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: ${'a'.repeat(10_000)}\r\n\r\n`,
    ]);
    expect(r.text).toMatch(/^HTTP\/1\.1 431/);
    await stillServes();
  });

  it('answers 400 to garbage request lines, bad header bytes and duplicate Host', async () => {
    expect((await raw(g.gateway.httpPort, ['\x00\x01\x02 garbage\r\n\r\n'])).text).toMatch(/^HTTP\/1\.1 400/);
    expect((await raw(g.gateway.httpPort, ['GET / HTTP/1.1\r\nHo st: x\r\n\r\n'])).text).toMatch(
      /^HTTP\/1\.1 400/,
    );
    expect(
      (await raw(g.gateway.httpPort, ['GET / HTTP/1.1\r\nHost: example.com\r\nX: a\rb\r\n\r\n'])).text,
    ).toMatch(/^HTTP\/1\.1 400/);
    const dup = await raw(g.gateway.httpPort, [
      'GET / HTTP/1.1\r\nHost: example.com\r\nHost: evil.test\r\n\r\n',
    ]);
    expect(dup.text).toMatch(/^HTTP\/1\.1 400/);
    await stillServes();
  });

  it('closes connections whose headers trickle in slower than the headers timeout', async () => {
    // A header line every 400 ms for 12 s, never the blank line: only the gateway's deadline
    // (headers 500 ms, request 1.5 s) can end it. The 15 s wait is a hang guard, not a threshold.
    const lines = Array.from({ length: 30 }, (_, i) => `X-${i}: ${i}\r\n`);
    const r = await raw(
      g.gateway.httpPort,
      ['GET / HTTP/1.1\r\n', 'Host: example.com\r\n', ...lines],
      15_000,
      400,
    );
    expect(r.closed).toBe(true);
    expect(r.text).toMatch(/^HTTP\/1\.1 408 [\s\S]*request not received in time\n$/);
    await stillServes();
  });

  it('answers 408 when a request body stalls', async () => {
    const r = await raw(
      g.gateway.httpPort,
      ['POST / HTTP/1.1\r\nHost: example.com\r\nContent-Length: 100\r\n\r\n', 'only ten b'],
      4000,
    );
    expect(r.text).toMatch(/^HTTP\/1\.1 408/);
    expect(r.text).toContain('request body idle too long');
    await stillServes();
  });

  it('handles broken upgrades: no route, dead backend, abrupt close', async () => {
    const up = (host: string) =>
      `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: x\r\n\r\n`;
    expect((await raw(g.gateway.httpPort, [up('nowhere.test')])).text).toMatch(/^HTTP\/1\.1 404/);
    expect((await raw(g.gateway.httpPort, [up('gone.test')])).text).toMatch(
      /^HTTP\/1\.1 502[\s\S]*upstream connect failed/,
    );
    const socket = net.connect(g.gateway.httpPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write(up('example.com'));
    socket.write(Buffer.from([0xff, 0x00, 0x13, 0x37]));
    socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    await stillServes();
    await expect.poll(() => g.gateway.proxy.tunnels).toBe(0);
  });

  it('cleans up when clients abort mid-response', async () => {
    const socket = net.connect(g.gateway.httpPort, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.write('GET / HTTP/1.1\r\nHost: slow.test\r\n\r\n');
    await new Promise<void>((r) => socket.once('data', () => r()));
    expect(g.gateway.proxy.inFlight).toBe(1);
    socket.destroy();
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(0);
    await stillServes();
  });

  it('survives random bytes and random header soup', async () => {
    let seed = 42;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    const jobs: Promise<unknown>[] = [];
    for (let n = 0; n < 150; n++) {
      const len = 1 + (rand() % 600);
      const bytes = Buffer.alloc(len);
      for (let k = 0; k < len; k++) bytes[k] = rand() % 256;
      const prefix =
        n % 3 === 0 ? 'GET / HTTP/1.1\r\nHost: example.com\r\n' : n % 3 === 1 ? 'POST /x HTTP/1.1\r\n' : '';
      jobs.push(raw(g.gateway.httpPort, [prefix, bytes, n % 2 === 0 ? '\r\n\r\n' : ''], 700));
    }
    await Promise.all(jobs);
    await stillServes();
    const metrics = (await request(g.admin, { path: '/metrics' })).body;
    expect(metrics).toMatch(/ployz_gateway_client_errors_total [1-9]/);
  });
});
