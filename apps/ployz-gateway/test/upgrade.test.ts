import { describe, expect, it } from 'vitest';
import { gatewayFor, rawBackend, rawClient } from './harness.ts';

const upgradeRequest =
  'GET /api/ws HTTP/1.1\r\nHost: example.com\r\nConnection: Upgrade, X-Private\r\nUpgrade: websocket\r\n' +
  'X-Private: secret\r\nKeep-Alive: 300\r\n\r\n';

describe('upgrades through the gateway', () => {
  it('never passes bytes after an upgrade request to a backend that did not switch', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n\r\nno');
    });
    await using g = await gatewayFor(backend.port);
    // the smuggled request: another host, another path, no route check if tunnelled
    const received = await rawClient(
      g.gateway.httpPort,
      `${upgradeRequest}GET /admin HTTP/1.1\r\nHost: internal.example\r\n\r\n`,
      () => false,
    );
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(received.endsWith('\r\n\r\nno')).toBe(true);
    expect(received.toLowerCase()).not.toContain('keep-alive');
    expect(backend.requests).toHaveLength(1);
    expect(backend.requests[0]).toMatch(/^GET \/api\/ws /);
  });

  it('tunnels after a 101, hop-by-hop headers dropped both ways', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nKeep-Alive: timeout=5\r\nX-Backend: raw\r\n\r\n',
      );
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString('latin1')}`));
    });
    await using g = await gatewayFor(backend.port);
    const received = await rawClient(g.gateway.httpPort, `${upgradeRequest}hello`, (r) =>
      r.endsWith('echo:hello'),
    );
    const head = received.slice(0, received.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).toMatch(/^http\/1\.1 101 /);
    expect(head).toContain('upgrade: websocket');
    expect(head).toContain('x-backend: raw');
    expect(head).not.toContain('keep-alive');
    const forwarded = (backend.requests[0] ?? '').toLowerCase();
    expect(forwarded).toContain('upgrade: websocket');
    expect(forwarded).toContain('connection: upgrade\r\n');
    expect(forwarded).not.toContain('x-private');
    expect(forwarded).not.toContain('keep-alive');
  });

  it('answers 502 to a 101 for a request that did not ask to upgrade', async () => {
    await using backend = await rawBackend((_head, socket) => {
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
    });
    await using g = await gatewayFor(backend.port);
    for (const version of ['1.1', '1.0']) {
      const received = await rawClient(
        g.gateway.httpPort,
        `GET / HTTP/${version}\r\nHost: example.com\r\n\r\n`,
        (r) => r.includes('invalid response'),
      );
      expect(received, `HTTP/${version}`).toMatch(/^HTTP\/1\.1 502 /);
    }
  });
});
