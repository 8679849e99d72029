/**
 * Down-marking on a real network (issue 18 item 7): one backend on this machine, one on "m2", a
 * network namespace whose packets are then all dropped (iptables in that namespace only) — the
 * gateway's keep-alive sockets to it go silent and new connects hang, as when a machine is cut
 * off the mesh. Under a request loop: no request fails, m2 gets no traffic once it is marked down,
 * and it gets traffic again once it answers. Needs root (network namespaces).
 */
import { MemoryRoutingFeed } from '@ployz/routing';
import { createNetnsHost, fixtures } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { machine, REV, release, request, revision, runGateway, startBackend, testConfig } from './harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('machine-down.test.ts needs root (network namespaces)');

const REMOTE_PORT = 8080;

function instanceOn(id: string, slot: number, machineId: string, ip: string, port: number) {
  return fixtures.instance(id, {
    namespace: 'default',
    service: 'web',
    slot,
    machine: machineId,
    revision: REV,
    container_id: null,
    ip,
    ports: { http: port },
  });
}

/** Who answered a GET through the gateway, or why it failed. */
async function who(url: string): Promise<string> {
  const r = await request(url, { host: 'web.test' }).catch((e: Error) => ({ status: 0, body: e.message }));
  if (r.status !== 200) return `failed ${r.status} ${r.body}`;
  return r.body === 'remote' ? 'm2' : (JSON.parse(r.body) as { name: string }).name;
}

/** `concurrency` loops of GETs for `ms`; every answer in order. */
async function load(url: string, ms: number, concurrency = 4): Promise<{ at: number; who: string }[]> {
  const start = Date.now();
  const answers: { at: number; who: string }[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() - start < ms) answers.push({ at: Date.now() - start, who: await who(url) });
    }),
  );
  return answers;
}

describe.skipIf(!isRoot)('a machine that stops answering', () => {
  it('is passed over within a second with no failed request, and used again once it answers', async () => {
    await using host = await createNetnsHost('gw-down');
    host.spawn(process.execPath, [
      '-e',
      `require('http').createServer((q,s)=>s.end('remote')).listen(${REMOTE_PORT},'0.0.0.0')`,
    ]);
    await using local = await startBackend('m1');
    const instances = [
      instanceOn('web-0', 0, 'm1', '127.0.0.1', local.port),
      instanceOn('web-1', 1, 'm2', host.address, REMOTE_PORT),
    ];
    const feed = new MemoryRoutingFeed({
      machines: [machine('m1'), machine('m2')],
      revisions: [revision('web', [{ hostnames: ['web.test'] }])],
      releases: [release('web', instances)],
      instances,
    });
    await using g = await runGateway(
      feed,
      testConfig({ machineId: 'm1', machineProbeIntervalMs: 200, machineProbeTimeoutMs: 200 }),
    );
    await g.gateway.follower.waitForSeq(0, 5000);
    for (let i = 0; i < 50 && (await who(g.url)) !== 'm2'; i++) await new Promise((r) => setTimeout(r, 100));

    const before = await load(g.url, 1000);
    expect(new Set(before.map((a) => a.who))).toEqual(new Set(['m1', 'm2']));

    // m2 drops every packet: the gateway's open sockets to it go silent mid-request.
    await host.run('iptables', ['-A', 'INPUT', '-j', 'DROP']);
    const cut = await load(g.url, 3000);
    expect(cut.filter((a) => a.who.startsWith('failed'))).toEqual([]);
    const late = cut.filter((a) => a.at > 1500);
    expect(late.length).toBeGreaterThan(10);
    expect(late.filter((a) => a.who !== 'm1')).toEqual([]);

    // m2 answers again: it serves again within a few probes.
    await host.run('iptables', ['-D', 'INPUT', '-j', 'DROP']);
    const healed = await load(g.url, 3000);
    expect(healed.filter((a) => a.who.startsWith('failed'))).toEqual([]);
    expect(healed.filter((a) => a.at > 1500 && a.who === 'm2').length).toBeGreaterThan(0);
  }, 30_000);
});
