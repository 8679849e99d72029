import { MemoryRoutingFeed } from '@ployz/routing';
import { createNetnsHost, freePort, type NetnsHost } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DnsService, startDnsService } from '../src/service.ts';
import { dig } from './dig.ts';
import { cluster } from './records.ts';

/**
 * Two network namespaces (testkit netns hosts), each a "container" whose IP belongs to an
 * instance of a different Ployz namespace, both querying the same server: short names resolve in
 * the caller's namespace.
 */
const isRoot = process.getuid?.() === 0;
// CI runs the suite as root (scripts/setup.sh refuses anything else): there, no root is a
// failure, never a silent skip. Elsewhere a skip says so out loud.
if (!isRoot && process.env.CI) {
  throw new Error('netns.test.ts needs root (network namespaces); CI runs as root, so this is a failure');
}
if (!isRoot) {
  console.warn('netns.test.ts SKIPPED: not root (network namespaces need root; CI runs it as root)');
}

describe.skipIf(!isRoot)('short names by source IP, from two network namespaces (needs root)', () => {
  let alpha: NetnsHost;
  let beta: NetnsHost;
  let dns: DnsService | undefined;
  let port: number;

  beforeAll(async () => {
    alpha = await createNetnsHost('ployz-dns-alpha');
    beta = await createNetnsHost('ployz-dns-beta');
    const feed = new MemoryRoutingFeed(
      cluster({
        alpha: { api: [{ id: 'api-a0', ip: '10.210.5.1' }], app: [{ id: 'app-a0', ip: alpha.address }] },
        beta: { api: [{ id: 'api-b0', ip: '10.210.6.1' }], app: [{ id: 'app-b0', ip: beta.address }] },
      }),
    );
    port = await freePort();
    dns = await startDnsService({
      feed,
      // One server bound on both machine-side addresses, like the bridge .2 and the overlay IP.
      listen: [alpha, beta].map((h) => ({ host: h.hostAddress, port })),
      admin: null,
      upstreams: [],
      upstreamTimeoutMs: 200,
    });
    await dns.follower.waitForSeq(0);
  });
  afterAll(async () => {
    await dns?.close();
    await alpha?.destroy();
    await beta?.destroy();
  });

  it('answers <svc> and <svc>.ployz.internal in the namespace of the instance owning the source IP', async () => {
    const server = (h: NetnsHost) => ({ host: h.hostAddress, port });
    for (const name of ['api', 'api.ployz.internal']) {
      const fromA = await dig(server(alpha), name, 'A', [], alpha.name);
      expect(
        fromA.answer.map((rr) => rr[4]),
        `${name} from alpha`,
      ).toEqual(['10.210.5.1']);
      const fromB = await dig(server(beta), name, 'A', [], beta.name);
      expect(
        fromB.answer.map((rr) => rr[4]),
        `${name} from beta`,
      ).toEqual(['10.210.6.1']);
    }
    // Fully qualified names mean the same thing from everywhere.
    const cross = await dig(server(alpha), 'api.beta.ployz.internal', 'A', [], alpha.name);
    expect(cross.answer.map((rr) => rr[4])).toEqual(['10.210.6.1']);
    // Over TCP the source address rule holds too.
    const tcp = await dig(server(beta), 'api', 'A', ['+tcp'], beta.name);
    expect(tcp.answer.map((rr) => rr[4])).toEqual(['10.210.6.1']);
    console.info(
      `netns.test.ts RAN as root: dig from netns ${alpha.name} (${alpha.address}) and ${beta.name} (${beta.address})`,
    );
  });
});
