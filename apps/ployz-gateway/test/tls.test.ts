import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { MemoryRoutingFeed } from '@ployz/routing';
import { describe, expect, it } from 'vitest';
import {
  instance,
  machine,
  rawBackend,
  release,
  revision,
  runGateway,
  startBackend,
  testConfig,
} from './harness.ts';

const run = promisify(execFile);

async function selfSigned(
  dir: string,
  hostname: string,
  file = hostname,
): Promise<{ cert: string; key: string }> {
  const keyPath = join(dir, `${file}.key.tmp`);
  const certPath = join(dir, `${file}.crt.tmp`);
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${hostname}`,
    '-addext',
    `subjectAltName=DNS:${hostname}`,
    '-keyout',
    keyPath,
    '-out',
    certPath,
  ]);
  const cert = await readFile(certPath, 'utf8');
  const key = await readFile(keyPath, 'utf8');
  // Key first, then cert: the reload sees a complete pair.
  await rename(keyPath, join(dir, `${file}.key`));
  await rename(certPath, join(dir, `${file}.crt`));
  return { cert, key };
}

function peerCert(port: number, servername: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { port, host: '127.0.0.1', servername, ca, ALPNProtocols: ['http/1.1'] },
      () => {
        const fp = socket.getPeerCertificate().fingerprint256;
        socket.destroy();
        resolve(fp);
      },
    );
    socket.on('error', reject);
  });
}

function httpsGet(port: number, servername: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: '127.0.0.1', port, servername, ca, headers: { host: servername }, path: '/tls', agent: false },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => {
          body += d.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}

describe('HTTPS with certificates chosen by SNI', () => {
  it('serves HTTP/1.1 and HTTP/2, picks by SNI (exact and wildcard), reloads without restart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployz-gw-certs-'));
    try {
      const a1 = await selfSigned(dir, 'a.test');
      const wild = await selfSigned(dir, '*.b.test');
      await using web = await startBackend('web');
      const i = instance('w-0', 'web', 0, web.port);
      const feed = new MemoryRoutingFeed({
        machines: [machine()],
        revisions: [revision('web', [{ hostnames: ['a.test', 'x.b.test'] }])],
        releases: [release('web', [i])],
        instances: [i],
      });
      await using g = await runGateway(feed, testConfig({ certDir: dir, headersTimeoutMs: 1000 }));
      await g.gateway.follower.waitForSeq(0, 5000);
      const port = g.gateway.httpsPort as number;

      const h1 = await httpsGet(port, 'a.test', a1.cert);
      expect(h1.status).toBe(200);
      expect(JSON.parse(h1.body).headers['x-forwarded-proto']).toBe('https');
      expect((await httpsGet(port, 'x.b.test', wild.cert)).status).toBe(200);
      // HTTP/1.1 over TLS takes the fast path: nothing was handed to node:http.
      const handedOff = async () =>
        Number(
          /^ployz_gateway_handed_off_connections_total (\d+)$/m.exec(
            await (await fetch(`${g.admin}/metrics`)).text(),
          )?.[1],
        );
      expect(await handedOff()).toBe(0);
      await expect(peerCert(port, 'unknown.test', a1.cert)).rejects.toThrow();

      // HTTP/2 over TLS.
      const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'a.test', ca: a1.cert });
      const h2 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/h2', ':authority': 'a.test' });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => {
          status = Number(headers[':status']);
        });
        stream.on('data', (d: Buffer) => {
          body += d.toString();
        });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
      });
      session.close();
      expect(h2.status).toBe(200);
      expect(JSON.parse(h2.body)).toMatchObject({
        url: '/h2',
        headers: { host: 'a.test', 'x-forwarded-proto': 'https' },
      });

      // WebSocket upgrade over TLS (HTTP/1.1 via ALPN).
      const upgraded = await new Promise<string>((resolve, reject) => {
        let got = '';
        const socket = tls.connect(
          { port, host: '127.0.0.1', servername: 'a.test', ca: a1.cert, ALPNProtocols: ['http/1.1'] },
          () => {
            socket.write(
              'GET /ws HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
            );
          },
        );
        socket.on('data', (d: Buffer) => {
          if (got === '') socket.write('ping');
          got += d.toString();
          if (got.includes('web:ping')) {
            socket.destroy();
            resolve(got);
          }
        });
        socket.on('error', reject);
      });
      expect(upgraded).toContain('101 Switching Protocols');
      expect(await handedOff()).toBe(1); // the upgrade is node:http's

      // Slow headers over TLS are cut by the headers deadline (slowloris), keep-alive or not. The
      // client sends a header line every 200 ms and never the blank line: only the gateway's
      // deadline (1 s here) can end it; the 15 s wait is a hang guard, not a threshold.
      const trickle = await new Promise<{ received: string; linesSent: number }>((resolve, reject) => {
        let received = '';
        let linesSent = 0;
        const socket = tls.connect(
          { port, host: '127.0.0.1', servername: 'a.test', ca: a1.cert, ALPNProtocols: ['http/1.1'] },
          () => {
            socket.write('GET / HTTP/1.1\r\n');
            const timer = setInterval(() => {
              if (socket.destroyed) {
                clearInterval(timer);
                return;
              }
              socket.write('X-A: b\r\n');
              linesSent += 1;
            }, 200);
          },
        );
        socket.on('data', (d: Buffer) => {
          received += d.toString('latin1');
        });
        socket.on('close', () => resolve({ received, linesSent }));
        socket.on('error', () => undefined);
        setTimeout(() => {
          reject(new Error('slow TLS client was never cut off'));
          socket.destroy();
        }, 15_000).unref();
      });
      expect(trickle.linesSent).toBeGreaterThan(0); // it was trickling when cut
      expect(trickle.received).not.toContain('HTTP/1.1 200');

      // Replace a.test's certificate on disk: served without a restart.
      const before = await peerCert(port, 'a.test', a1.cert);
      const a2 = await selfSigned(dir, 'a.test');
      await expect
        .poll(() => peerCert(port, 'a.test', a2.cert).catch(() => before), { timeout: 5000 })
        .not.toBe(before);
      // A broken pair keeps the previous certificate for that hostname.
      await writeFile(join(dir, 'a.test.key'), 'not a key');
      await new Promise((r) => setTimeout(r, 500));
      expect((await httpsGet(port, 'a.test', a2.cert)).status).toBe(200);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('answers 502 over HTTP/2 and HTTP/1.1-over-TLS to an invalid upstream head; CONNECT over HTTP/2 and HTTP/1.1-over-TLS → 405', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployz-gw-certs-'));
    try {
      const a = await selfSigned(dir, 'a.test');
      await using backend = await rawBackend((_head, socket) => {
        socket.write('HTTP/1.1 200 OK\r\nX Bad: 1\r\nX-A: a\u0000b\r\nContent-Length: 2\r\n\r\nok');
      });
      const i = instance('w-0', 'web', 0, backend.port);
      const feed = new MemoryRoutingFeed({
        machines: [machine()],
        revisions: [revision('web', [{ hostnames: ['a.test'] }])],
        releases: [release('web', [i])],
        instances: [i],
      });
      await using g = await runGateway(feed, testConfig({ certDir: dir, headersTimeoutMs: 1000 }));
      await g.gateway.follower.waitForSeq(0, 5000);
      const port = g.gateway.httpsPort as number;
      expect((await httpsGet(port, 'a.test', a.cert)).status).toBe(502);
      const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'a.test', ca: a.cert });
      const ask = (headers: http2.OutgoingHttpHeaders) =>
        new Promise<number>((resolve, reject) => {
          const stream = session.request(headers);
          let status = 0;
          stream.on('response', (h) => {
            status = Number(h[':status']);
          });
          stream.on('data', () => undefined);
          stream.on('end', () => resolve(status));
          stream.on('error', reject);
          stream.end();
        });
      for (const method of ['GET', 'POST'])
        expect(await ask({ ':method': method, ':path': '/', ':authority': 'a.test' })).toBe(502);
      expect(await ask({ ':method': 'CONNECT', ':authority': 'a.test:443' })).toBe(405);
      session.close();
      // CONNECT over HTTP/1.1-over-TLS: the same 405 (not a silently dropped connection).
      const raw = tls.connect({
        port,
        host: '127.0.0.1',
        servername: 'a.test',
        ca: a.cert,
        ALPNProtocols: ['http/1.1'],
      });
      let answer = '';
      raw.setEncoding('utf8');
      raw.on('data', (d: string) => {
        answer += d;
      });
      await new Promise<void>((resolve, reject) => {
        raw.once('secureConnect', () => raw.write('CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n'));
        raw.once('close', () => resolve());
        raw.once('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 405 /);
      expect(answer).toContain('CONNECT is not served here');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
