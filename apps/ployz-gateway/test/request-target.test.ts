import { MemoryRoutingFeed } from '@ployz/routing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Backend,
  instance,
  machine,
  type RunningGateway,
  rawClient,
  release,
  revision,
  runGateway,
  startBackend,
} from './harness.ts';

const REV_API = 'rev-cccccccccccccccc';

/** One request on its own connection; the answer's status and (JSON) body. */
async function send(port: number, head: string): Promise<{ status: number; body: string }> {
  const received = await rawClient(port, head, (r) => {
    const end = r.indexOf('\r\n\r\n');
    const length = /\r\ncontent-length: *(\d+)/i.exec(r)?.[1];
    return end !== -1 && length !== undefined && r.length - end - 4 >= Number(length);
  });
  return { status: Number(received.slice(9, 12)), body: received.slice(received.indexOf('\r\n\r\n') + 4) };
}

/** The gateway's own answer is complete (its one-line body ends with a newline). */
const answered = (r: string) => /\r\n\r\n[\s\S]*\n$/.test(r);

describe('request targets', () => {
  let web: Backend;
  let api: Backend;
  let g: RunningGateway;

  beforeAll(async () => {
    web = await startBackend('web');
    api = await startBackend('api');
    const w = instance('w-0', 'web', 0, web.port);
    const a = instance('a-0', 'api', 0, api.port, REV_API);
    const feed = new MemoryRoutingFeed({
      machines: [machine()],
      revisions: [
        revision('web', [{ hostnames: ['echo.localhost', 'other.example'] }]),
        revision('api', [{ hostnames: ['echo.localhost'], path: '/api' }], REV_API),
      ],
      releases: [release('web', [w]), release('api', [a], REV_API)],
      instances: [w, a],
    });
    g = await runGateway(feed);
    await g.gateway.follower.waitForSeq(0, 5000);
  });

  afterAll(async () => {
    await g[Symbol.asyncDispose]();
    await web[Symbol.asyncDispose]();
    await api[Symbol.asyncDispose]();
  });

  it('forwards an absolute-form target like its origin form: Host is the target authority', async () => {
    const origin = await send(g.gateway.httpPort, 'GET /x?q=1 HTTP/1.1\r\nHost: echo.localhost\r\n\r\n');
    const absolute = await send(
      g.gateway.httpPort,
      'GET http://echo.localhost/x?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n',
    );
    expect(absolute.status).toBe(200);
    const seen = (body: string) => {
      const { name, url, headers } = JSON.parse(body) as {
        name: string;
        url: string;
        headers: Record<string, string>;
      };
      return { name, url, host: headers.host, forwardedHost: headers['x-forwarded-host'] };
    };
    expect(seen(absolute.body)).toEqual(seen(origin.body));
    expect(seen(absolute.body)).toEqual({
      name: 'web',
      url: '/x?q=1',
      host: 'echo.localhost',
      forwardedHost: 'echo.localhost',
    });
  });

  it('refuses user information in an absolute-form target', async () => {
    const answer = await send(
      g.gateway.httpPort,
      'GET http://me@echo.localhost/x HTTP/1.1\r\nHost: echo.localhost\r\n\r\n',
    );
    expect(answer.status).toBe(400);
  });

  it('routes on the normalised path and forwards that same path, on the fast path and node:http', async () => {
    const cases: [string, string, string][] = [
      ['/api/../secret', 'web', '/secret'],
      ['/api/%2e%2e/secret', 'web', '/secret'],
      ['/api/%2E./secret?x=/../y', 'web', '/secret?x=/../y'],
      ['/x/../api/secret', 'api', '/api/secret'],
      ['/x/%2e%2E/api/./secret', 'api', '/api/secret'],
      ['/%61pi/v1', 'api', '/api/v1'],
      ['/api%2F..%2fsecret', 'web', '/api%2F..%2Fsecret'],
    ];
    for (const version of ['1.1', '1.0']) {
      for (const [target, name, url] of cases) {
        const answer = await send(
          g.gateway.httpPort,
          `GET ${target} HTTP/${version}\r\nHost: echo.localhost\r\n\r\n`,
        );
        expect(answer.status, `${version} ${target}`).toBe(200);
        expect(JSON.parse(answer.body), `${version} ${target}`).toMatchObject({ name, url });
      }
      const absolute = await send(
        g.gateway.httpPort,
        `GET http://echo.localhost/x/%2e%2e/api/secret HTTP/${version}\r\nHost: echo.localhost\r\n\r\n`,
      );
      expect(JSON.parse(absolute.body)).toMatchObject({ name: 'api', url: '/api/secret' });
      const bad = await send(
        g.gateway.httpPort,
        `GET /api/%zz HTTP/${version}\r\nHost: echo.localhost\r\n\r\n`,
      );
      expect(bad.status, `${version} bad escape`).toBe(400);
    }
  });

  it('answers 400 to a malformed Host on the fast path and node:http; a port and a trailing dot are fine', async () => {
    for (const version of ['1.1', '1.0']) {
      for (const host of [
        'echo.localhost:abc',
        '[echo.localhost]',
        'echo.localhost:80@evil',
        'echo.localhost, b',
        '',
      ]) {
        const answer = await send(g.gateway.httpPort, `GET / HTTP/${version}\r\nHost: ${host}\r\n\r\n`);
        expect(answer.status, `${version} Host: ${host}`).toBe(400);
      }
      for (const host of ['echo.localhost:8080', 'echo.localhost.', 'ECHO.localhost.:80']) {
        const answer = await send(g.gateway.httpPort, `GET / HTTP/${version}\r\nHost: ${host}\r\n\r\n`);
        expect(answer.status, `${version} Host: ${host}`).toBe(200);
      }
    }
    const absolute = await send(
      g.gateway.httpPort,
      'GET http://echo.localhost:abc/ HTTP/1.1\r\nHost: echo.localhost\r\n\r\n',
    );
    expect(absolute.status).toBe(400);
  });

  it('refuses CONNECT (405) on both paths, HTTP/2.0 in HTTP/1 syntax (505), a request line over the limit (414)', async () => {
    const connects = [
      'CONNECT /api HTTP/1.1\r\nHost: echo.localhost\r\n\r\n', // origin form: the fast path's syntax
      'CONNECT echo.localhost:443 HTTP/1.1\r\nHost: echo.localhost:443\r\n\r\n',
    ];
    for (const head of connects) {
      const answer = await rawClient(g.gateway.httpPort, head, answered);
      expect(answer, head).toMatch(/^HTTP\/1\.1 405 /);
    }
    const v2 = await rawClient(
      g.gateway.httpPort,
      'GET / HTTP/2.0\r\nHost: echo.localhost\r\n\r\n',
      answered,
    );
    expect(v2).toMatch(/^HTTP\/1\.1 505 /);
    const long = await rawClient(
      g.gateway.httpPort,
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: echo.localhost\r\n\r\n`,
      answered,
    );
    expect(long).toMatch(/^HTTP\/1\.1 414 /);
    const headers = await rawClient(
      g.gateway.httpPort,
      `GET / HTTP/1.1\r\nHost: echo.localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      answered,
    );
    expect(headers).toMatch(/^HTTP\/1\.1 431 /);
    expect(web.server.listening && api.server.listening).toBe(true);
  });
});
