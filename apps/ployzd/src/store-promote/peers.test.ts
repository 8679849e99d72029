import { createServer } from 'node:net';
import { createNetnsHost, freePort } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeStorePeers } from './peers.ts';

describe('probeStorePeers', () => {
  const server = createServer((s) => s.destroy());
  let port = 0;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('names the members that do not answer on the leaf port, with why', async () => {
    const peers = await probeStorePeers(
      {
        members: [
          { machine_id: 'm1', overlay_ip: '127.0.0.1' },
          // Loopback but nothing listening there: refused at once.
          { machine_id: 'm2', overlay_ip: '127.0.0.2' },
          // TEST-NET-1: no member there (a timeout, unreachable or refused, by the machine's routes).
          { machine_id: 'm3', overlay_ip: '192.0.2.1' },
        ],
      },
      { port, timeoutMs: 300 },
    );
    expect(peers.map((p) => [p.machine, p.server, p.reachable])).toEqual([
      ['m1', 'm1-store', true],
      ['m2', 'm2-store', false],
      ['m3', 'm3-store', false],
    ]);
    expect(peers[0]?.rtt_ms).toBeGreaterThanOrEqual(0);
    expect(peers[0]?.address).toBe(`127.0.0.1:${port}`);
    expect(peers[1]).toMatchObject({ rtt_ms: null, problem: 'ECONNREFUSED' });
    expect(peers[2]?.problem).toMatch(/^(no answer in 300 ms|E[A-Z]+)$/);
  });

  it.skipIf(process.getuid?.() !== 0)(
    'probes from inside the overlay network namespace (where wg0 lives), not from the host',
    async () => {
      await using host = await createNetnsHost('peers');
      const port = await freePort();
      // A listener on the namespace's own loopback: reachable only from inside it.
      const listener = host.spawn(process.execPath, [
        '-e',
        `require('node:net').createServer((s) => s.destroy()).listen(${port}, '127.0.0.1', () => console.log('up'))`,
      ]);
      await new Promise<void>((resolve) => listener.stdout?.once('data', () => resolve()));
      const members = { members: [{ machine_id: 'm1', overlay_ip: '127.0.0.1' }] };
      const inside = await probeStorePeers(members, { port, netns: host.path, timeoutMs: 2000 });
      expect(inside[0]).toMatchObject({ machine: 'm1', reachable: true, problem: null });
      const outside = await probeStorePeers(members, { port, timeoutMs: 500 });
      expect(outside[0]?.reachable).toBe(false);
      // A namespace that does not exist: every member unreachable, with why.
      const gone = await probeStorePeers(members, { port, netns: '/proc/0/ns/net', timeoutMs: 500 });
      expect(gone[0]?.reachable).toBe(false);
      expect(gone[0]?.problem).toMatch(/probe exited|nsenter/);
    },
    60_000,
  );
});
