import net from 'node:net';
import { MemoryRoutingFeed } from '@ployz/routing';
import { describe, expect, it } from 'vitest';
import {
  instance,
  machine,
  REV2,
  release,
  request,
  revision,
  runGateway,
  startBackend,
  testConfig,
} from './harness.ts';

const at = '2026-01-01T00:00:00Z';
const REV_API = 'rev-cccccccccccccccc';
const REV_DOWN = 'rev-dddddddddddddddd';

async function freeClosedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((r) => server.close(r));
  return port;
}

describe('routing requests', () => {
  it('routes by host and longest path prefix, 404 and 503 with reasons', async () => {
    await using web = await startBackend('web');
    await using api = await startBackend('api');
    const webI = instance('web-0', 'web', 0, web.port);
    const apiI = instance('api-0', 'api', 0, api.port, REV_API);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [
        revision('web', [{ hostnames: ['example.com', '*.example.com'] }]),
        revision('api', [{ hostnames: ['example.com'], path: '/api' }], REV_API),
        revision('down', [{ hostnames: ['down.test'] }], REV_DOWN),
      ],
      releases: [release('web', [webI]), release('api', [apiI], REV_API), release('down', [], REV_DOWN)],
      instances: [webI, apiI],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);

    const root = await request(g.url, { host: 'Example.COM:80', path: '/' });
    expect(root.status).toBe(200);
    expect(JSON.parse(root.body).name).toBe('web');
    expect(JSON.parse((await request(g.url, { path: '/api/users?x=1' })).body)).toMatchObject({
      name: 'api',
      url: '/api/users?x=1',
    });
    expect(JSON.parse((await request(g.url, { path: '/apix' })).body).name).toBe('web');
    expect(JSON.parse((await request(g.url, { host: 'a.b.example.com.', path: '/api' })).body).name).toBe(
      'web',
    );

    const missing = await request(g.url, { host: 'nowhere.test' });
    expect(missing.status).toBe(404);
    expect(missing.body).toBe('404 no route for this host and path\n');
    const down = await request(g.url, { host: 'down.test' });
    expect(down.status).toBe(503);
    expect(down.body).toContain('no routable backend for default/down');
  });

  it('answers 503 before the first table is loaded', async () => {
    const feed = new MemoryRoutingFeed();
    feed.setUnavailable(true);
    await using g = await runGateway(feed);
    const answer = await request(g.url);
    expect(answer.status).toBe(503);
    expect(answer.body).toContain('routing table not loaded yet');
    const health = await request(g.admin, { path: '/_ployz/health' });
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body).reason).toContain('no routing snapshot loaded yet');
  });

  it('round-robins, sets X-Forwarded-*, strips hop-by-hop headers', async () => {
    await using a = await startBackend('a');
    await using b = await startBackend('b');
    const ia = instance('w-0', 'web', 0, a.port);
    const ib = instance('w-1', 'web', 1, b.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [ia, ib])],
      instances: [ia, ib],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
    const names: string[] = [];
    for (let i = 0; i < 4; i++) {
      const answer = await request(g.url, {
        headers: {
          'x-forwarded-for': '203.0.113.9',
          'x-forwarded-proto': 'forged',
          'keep-alive': 'timeout=1',
          te: 'trailers',
        },
      });
      const seen = JSON.parse(answer.body);
      names.push(seen.name);
      expect(seen.headers['x-forwarded-for']).toBe('203.0.113.9, 127.0.0.1');
      expect(seen.headers['x-forwarded-proto']).toBe('http');
      expect(seen.headers['x-forwarded-host']).toBe('example.com');
      expect(seen.headers.host).toBe('example.com');
      expect(seen.headers['keep-alive']).toBeUndefined();
      expect(seen.headers.te).toBeUndefined();
    }
    expect(names.sort()).toEqual(['a', 'a', 'b', 'b']);
  });

  it('retries idempotent requests on another backend after a connect failure, never bodies', async () => {
    await using live = await startBackend('live');
    const dead = await freeClosedPort();
    const i0 = instance('w-0', 'web', 0, dead);
    const i1 = instance('w-1', 'web', 1, live.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [i0, i1])],
      instances: [i0, i1],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
    for (let i = 0; i < 4; i++) {
      const answer = await request(g.url);
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).name).toBe('live');
    }
    // A POST with a body that hit the dead backend must not be replayed: 502 naming the cause.
    // The dead backend is marked down for a moment after a failure, so wait that out first.
    await new Promise((r) => setTimeout(r, 2100));
    const statuses = new Set<number>();
    for (let i = 0; i < 2; i++) {
      const answer = await request(g.url, { method: 'POST', body: 'payload' });
      statuses.add(answer.status);
      if (answer.status === 502) expect(answer.body).toContain('upstream connect failed (ECONNREFUSED)');
      else expect(JSON.parse(answer.body)).toMatchObject({ name: 'live', body: 'payload' });
    }
    expect(statuses.has(502)).toBe(true);
    const metrics = await request(g.admin, { path: '/metrics' });
    expect(metrics.body).toMatch(/ployz_gateway_retries_total [1-9]/);
  });

  it('serves a routing event as soon as the follower applied it', async () => {
    await using v1 = await startBackend('v1');
    await using v2 = await startBackend('v2');
    const i1 = instance('w-0', 'web', 0, v1.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [i1])],
      instances: [i1],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
    expect(JSON.parse((await request(g.url)).body).name).toBe('v1');
    const i2 = instance('w-1', 'web', 0, v2.port, REV2);
    const seq = feed.publish(
      {
        type: 'revision_stored',
        revision: revision('web', [{ hostnames: ['example.com'] }], REV2),
        deploy_id: null,
        at,
      },
      { type: 'instance_upserted', instance: i2, deploy_id: null, at },
      { type: 'release_committed', release: release('web', [i2], REV2), deploy_id: null, at },
    );
    await g.gateway.follower.waitForSeq(seq, 5000);
    expect(JSON.parse((await request(g.url)).body).name).toBe('v2');
  });

  it('reports stale on the admin port while the store is down and keeps serving', async () => {
    await using web = await startBackend('web');
    const i = instance('w-0', 'web', 0, web.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [i])],
      instances: [i],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
    expect((await request(g.admin, { path: '/_ployz/health' })).status).toBe(200);
    feed.setUnavailable(true);
    await expect
      .poll(async () => (await request(g.admin, { path: '/_ployz/health' })).status, { timeout: 5000 })
      .toBe(503);
    const health = JSON.parse((await request(g.admin, { path: '/_ployz/health' })).body);
    expect(health).toMatchObject({ status: 'stale' });
    expect(health.reason).toMatch(/unreachable|STORE_UNAVAILABLE/);
    expect((await request(g.url)).status).toBe(200);
    feed.setUnavailable(false);
    await expect
      .poll(async () => (await request(g.admin, { path: '/_ployz/health' })).status, { timeout: 5000 })
      .toBe(200);
    const status = JSON.parse((await request(g.admin, { path: '/_ployz/status' })).body);
    expect(status).toMatchObject({ loaded: true, stale: false, route_count: 1, backend_count: 1 });
    const metrics = (await request(g.admin, { path: '/metrics' })).body;
    expect(metrics).toContain('ployz_gateway_requests_total{route="example.com",status="200"} 1');
    expect(metrics).toContain('ployz_gateway_upstream_latency_seconds_count{route="example.com"} 1');
    expect(metrics).toContain('ployz_gateway_projection_stale 0');
  });

  it('proxies WebSocket upgrades as a byte tunnel', async () => {
    await using ws = await startBackend('ws');
    const i = instance('w-0', 'web', 0, ws.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [i])],
      instances: [i],
    });
    await using g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
    const socket = net.connect(g.gateway.httpPort, '127.0.0.1');
    const received: string[] = [];
    socket.on('data', (d: Buffer) => received.push(d.toString()));
    socket.write(
      'GET /chat HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await expect.poll(() => received.join('')).toContain('101 Switching Protocols');
    socket.write('hello');
    await expect.poll(() => received.join('')).toContain('ws:hello');
    socket.destroy();
  });

  it('drains in-flight requests on close', async () => {
    await using slow = await startBackend('slow', (_req, res) => {
      setTimeout(() => res.end('done'), 300);
    });
    const i = instance('w-0', 'web', 0, slow.port);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [revision('web', [{ hostnames: ['example.com'] }])],
      releases: [release('web', [i])],
      instances: [i],
    });
    const g = await runGateway(feed, testConfig({ drainTimeoutMs: 5000 }));
    await g.gateway.follower.waitForSeq(0, 5000);
    const pending = request(g.url);
    await expect.poll(() => g.gateway.proxy.inFlight).toBe(1);
    await g.gateway.close();
    const answer = await pending;
    expect(answer).toMatchObject({ status: 200, body: 'done' });
    await expect(request(g.url)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('streams large bodies both ways; 504 on a silent upstream, 502 on a reset', async () => {
    await using echo = await startBackend('echo', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    });
    await using silent = await startBackend('silent', () => undefined);
    await using reset = await startBackend('reset', (req) => req.socket.destroy());
    const e = instance('e-0', 'echo', 0, echo.port, 'rev-1111111111111111');
    const s = instance('s-0', 'silent', 0, silent.port, 'rev-2222222222222222');
    const r = instance('r-0', 'reset', 0, reset.port, 'rev-3333333333333333');
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [
        revision('echo', [{ hostnames: ['echo.test'] }], 'rev-1111111111111111'),
        revision('silent', [{ hostnames: ['silent.test'] }], 'rev-2222222222222222'),
        revision('reset', [{ hostnames: ['reset.test'] }], 'rev-3333333333333333'),
      ],
      releases: [
        release('echo', [e], 'rev-1111111111111111'),
        release('silent', [s], 'rev-2222222222222222'),
        release('reset', [r], 'rev-3333333333333333'),
      ],
      instances: [e, s, r],
    });
    await using g = await runGateway(feed, testConfig({ upstreamTimeoutMs: 300 }));
    await g.gateway.follower.waitForSeq(0, 5000);
    const big = 'x'.repeat(3 * 1024 * 1024);
    const echoed = await request(g.url, { host: 'echo.test', method: 'POST', body: big });
    expect(echoed.status).toBe(200);
    expect(echoed.body.length).toBe(big.length);
    const timedOut = await request(g.url, { host: 'silent.test' });
    expect(timedOut).toMatchObject({ status: 504, body: '504 upstream timed out\n' });
    const broken = await request(g.url, { host: 'reset.test' });
    expect(broken.status).toBe(502);
    expect(broken.body).toMatch(/^502 upstream failed \(/);
  });
});
