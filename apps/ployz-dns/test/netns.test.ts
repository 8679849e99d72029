import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { promisify } from 'node:util';
import { MemoryRoutingFeed } from '@ployz/routing';
import { freePort } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DnsService, startDnsService } from '../src/service.ts';
import { dig } from './dig.ts';
import { cluster } from './records.ts';

const run = promisify(execFile);
const ip = (...args: string[]) => run('ip', args);

/**
 * Two network namespaces, each a "container" whose IP belongs to an instance of a different
 * Ployz namespace, both querying the same server: short names resolve in the caller's namespace.
 * (Inline netns setup: @ployz/testkit has no netns helper yet.)
 */
describe.skipIf(process.getuid?.() !== 0)('short names by source IP, from two network namespaces', () => {
  const id = `${process.pid % 1000}${randomInt(100, 999)}`;
  const octet = randomInt(1, 254);
  const hosts = [
    { netns: `ployz-dns-t${id}-a`, veth: `pdt${id}a`, host: `10.251.${octet}.1`, peer: `10.251.${octet}.2` },
    { netns: `ployz-dns-t${id}-b`, veth: `pdt${id}b`, host: `10.251.${octet}.5`, peer: `10.251.${octet}.6` },
  ] as const;
  let dns: DnsService | undefined;

  async function cleanup(): Promise<void> {
    for (const h of hosts) {
      await ip('netns', 'del', h.netns).catch(() => undefined);
      await ip('link', 'del', `${h.veth}0`).catch(() => undefined);
    }
  }

  beforeAll(async () => {
    await cleanup();
    for (const h of hosts) {
      await ip('netns', 'add', h.netns);
      await ip('link', 'add', `${h.veth}0`, 'type', 'veth', 'peer', 'name', `${h.veth}1`);
      await ip('link', 'set', `${h.veth}1`, 'netns', h.netns);
      await ip('addr', 'add', `${h.host}/30`, 'dev', `${h.veth}0`);
      await ip('link', 'set', `${h.veth}0`, 'up');
      await ip('-n', h.netns, 'addr', 'add', `${h.peer}/30`, 'dev', `${h.veth}1`);
      await ip('-n', h.netns, 'link', 'set', `${h.veth}1`, 'up');
      await ip('-n', h.netns, 'link', 'set', 'lo', 'up');
    }
    const feed = new MemoryRoutingFeed(
      cluster({
        alpha: { api: [{ id: 'api-a0', ip: '10.210.5.1' }], app: [{ id: 'app-a0', ip: hosts[0].peer }] },
        beta: { api: [{ id: 'api-b0', ip: '10.210.6.1' }], app: [{ id: 'app-b0', ip: hosts[1].peer }] },
      }),
    );
    const port = await freePort();
    dns = await startDnsService({
      feed,
      // One server bound on both host-side addresses, like the bridge .2 and the overlay IP.
      listen: hosts.map((h) => ({ host: h.host, port })),
      admin: null,
      upstreams: [],
      upstreamTimeoutMs: 200,
    });
    await dns.follower.waitForSeq(0);
  });
  afterAll(async () => {
    await dns?.close();
    await cleanup();
  });

  it('answers <svc> and <svc>.ployz.internal in the namespace of the instance owning the source IP', async () => {
    const [a, b] = hosts;
    const server = (h: typeof a | typeof b) => ({ host: h.host, port: dns?.dnsAddresses[0]?.port ?? 0 });
    for (const name of ['api', 'api.ployz.internal']) {
      const fromA = await dig(server(a), name, 'A', [], a.netns);
      expect(
        fromA.answer.map((rr) => rr[4]),
        `${name} from alpha`,
      ).toEqual(['10.210.5.1']);
      const fromB = await dig(server(b), name, 'A', [], b.netns);
      expect(
        fromB.answer.map((rr) => rr[4]),
        `${name} from beta`,
      ).toEqual(['10.210.6.1']);
    }
    // Fully qualified names mean the same thing from everywhere.
    const cross = await dig(server(a), 'api.beta.ployz.internal', 'A', [], a.netns);
    expect(cross.answer.map((rr) => rr[4])).toEqual(['10.210.6.1']);
    // Over TCP the source address rule holds too.
    const tcp = await dig(server(b), 'api', 'A', ['+tcp'], b.netns);
    expect(tcp.answer.map((rr) => rr[4])).toEqual(['10.210.6.1']);
  });
});
