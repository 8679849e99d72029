import { MemoryRoutingFeed } from '@ployz/routing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DnsService, startDnsService } from '../src/service.ts';
import { dig } from './dig.ts';
import { cluster, instanceRecord } from './records.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

/** Every record kind, against the real server, asked with the real `dig`. */
describe('ployz-dns answers dig', () => {
  let feed: MemoryRoutingFeed;
  let dns: DnsService;
  let upstream: TestUpstream;
  let server: { host: string; port: number };
  /** The forward cache's clock: tests move it to age cached answers. */
  let cacheNowMs = Date.now();

  beforeAll(async () => {
    upstream = await startUpstream(
      // `web` upstream is what a bare label from a stranger must get: the upstream's answer.
      { 'example.test': '192.0.2.7', 'large.test': '192.0.2.8', web: '192.0.2.50' },
      false,
      ['large.test'],
    );
    feed = new MemoryRoutingFeed(
      cluster({
        default: {
          web: [
            { id: 'web-0', ip: '10.210.1.10', ip6: 'fd00::10', ports: { http: 8080 } },
            { id: 'web-1', ip: '10.210.1.11', ports: { http: 8080 } },
          ],
          db: [{ id: 'db-0', ip: '10.210.1.20', ports: { pg: 5432 } }],
          // The caller: dig from 127.0.0.1 is this instance, so short names resolve in `default`.
          client: [{ id: 'client-0', ip: '127.0.0.1' }],
          big: Array.from({ length: 60 }, (_, i) => ({ id: `big-${i}`, ip: `10.210.2.${i + 1}` })),
        },
        other: {
          web: [{ id: 'oweb-0', ip: '10.210.9.10' }],
          caller: [{ id: 'ocaller-0', ip: '127.0.0.2' }],
        },
      }),
    );
    dns = await startDnsService({
      feed,
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: [{ host: upstream.host, port: upstream.port }],
      upstreamTimeoutMs: 500,
      cache: { maxEntries: 10_000, maxTtlSeconds: 3600, now: () => cacheNowMs },
    });
    await dns.follower.waitForSeq(0);
    server = dns.dnsAddresses[0] ?? { host: '', port: 0 };
  });
  afterAll(async () => {
    await dns?.close();
    await upstream?.close();
  });

  it('answers A for a service with its routable instances, authoritative, TTL 0', async () => {
    const r = await dig(server, 'web.default.ployz.internal');
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.answer.map((rr) => rr[4]).sort()).toEqual(['10.210.1.10', '10.210.1.11']);
    expect(r.answer.every((rr) => rr[1] === '0' && rr[3] === 'A')).toBe(true);
  });

  it('answers AAAA when instances have IPv6, NODATA with SOA when none do', async () => {
    const v6 = await dig(server, 'web.default.ployz.internal', 'AAAA');
    expect(v6.answer.map((rr) => rr[4])).toEqual(['fd00::10']);
    const none = await dig(server, 'db.default.ployz.internal', 'AAAA');
    expect(none.status).toBe('NOERROR');
    expect(none.answer).toEqual([]);
    expect(none.authority[0]?.[3]).toBe('SOA');
    expect(none.flags).toContain('aa');
  });

  it('answers NXDOMAIN with SOA for names that do not exist in the zone', async () => {
    for (const name of [
      'nope.default.ployz.internal',
      'web-9.web.default.ployz.internal',
      'a.b.c.d.ployz.internal',
    ]) {
      const r = await dig(server, name);
      expect(r.status, name).toBe('NXDOMAIN');
      expect(r.flags).toContain('aa');
      expect(r.authority[0]?.[0]).toBe('ployz.internal.');
      expect(r.authority[0]?.[3]).toBe('SOA');
    }
  });

  it('answers NODATA (not NXDOMAIN) for empty non-terminals and the apex SOA', async () => {
    const ent = await dig(server, 'default.ployz.internal');
    expect(ent.status).toBe('NOERROR');
    expect(ent.answer).toEqual([]);
    const tcp = await dig(server, '_tcp.web.default.ployz.internal', 'SRV');
    expect(tcp.status).toBe('NOERROR');
    const apex = await dig(server, 'ployz.internal', 'SOA');
    expect(apex.answer[0]?.slice(3, 5)).toEqual(['SOA', 'ns.ployz.internal.']);
  });

  it('answers one instance by name', async () => {
    const r = await dig(server, 'web-1.web.default.ployz.internal');
    expect(r.answer.map((rr) => rr[4])).toEqual(['10.210.1.11']);
  });

  it('answers SRV for named ports, with the targets addresses as additional records', async () => {
    const r = await dig(server, '_http._tcp.web.default.ployz.internal', 'SRV');
    expect(r.status).toBe('NOERROR');
    expect(r.answer.map((rr) => rr.slice(4)).sort()).toEqual([
      ['0', '10', '8080', 'web-0.web.default.ployz.internal.'],
      ['0', '10', '8080', 'web-1.web.default.ployz.internal.'],
    ]);
    expect(
      r.additional
        .filter((rr) => rr[3] === 'A')
        .map((rr) => rr[4])
        .sort(),
    ).toEqual(['10.210.1.10', '10.210.1.11']);
    const pg = await dig(server, '_pg._tcp.db.default.ployz.internal', 'SRV');
    expect(pg.answer[0]?.slice(4)).toEqual(['0', '10', '5432', 'db-0.db.default.ployz.internal.']);
  });

  it('keeps the caller letter case in the question and matches case-insensitively', async () => {
    const r = await dig(server, 'WEB.Default.PLOYZ.internal');
    expect(r.raw).toContain(';WEB.Default.PLOYZ.internal.');
    expect(r.answer).toHaveLength(2);
  });

  it('resolves short names in the namespace of the instance that owns the source IP', async () => {
    const short = await dig(server, 'web');
    expect(short.answer.map((rr) => rr[4]).sort()).toEqual(['10.210.1.10', '10.210.1.11']);
    const zoneShort = await dig(server, 'web.ployz.internal');
    expect(zoneShort.answer.map((rr) => rr[4]).sort()).toEqual(['10.210.1.10', '10.210.1.11']);
    const srv = await dig(server, '_http._tcp.web.ployz.internal', 'SRV');
    expect(srv.answer).toHaveLength(2);
    // The same names from 127.0.0.2, an instance of namespace `other`.
    const other = await dig(server, 'web', 'A', ['-b', '127.0.0.2']);
    expect(other.answer.map((rr) => rr[4])).toEqual(['10.210.9.10']);
    const otherZone = await dig(server, 'web.ployz.internal', 'A', ['-b', '127.0.0.2']);
    expect(otherZone.answer.map((rr) => rr[4])).toEqual(['10.210.9.10']);
    // 127.0.0.3 is nobody: the zone short form does not exist, a bare label is forwarded.
    const before = upstream.queries;
    const stranger = await dig(server, 'web.ployz.internal', 'A', ['-b', '127.0.0.3']);
    expect(stranger.status).toBe('NXDOMAIN');
    expect(stranger.flags).toContain('aa');
    expect(upstream.queries).toBe(before);
    const bare = await dig(server, 'web', 'A', ['-b', '127.0.0.3']);
    // The upstream's answer for `web` (not ours: no aa, not 10.210.x), asked exactly once.
    expect(bare.status).toBe('NOERROR');
    expect(bare.flags).not.toContain('aa');
    expect(bare.answer.map((rr) => rr[4])).toEqual(['192.0.2.50']);
    expect(upstream.queries).toBe(before + 1);
  });

  it('answers over TCP, and sets TC over UDP when the answer does not fit', async () => {
    const udp = await dig(server, 'big.default.ployz.internal', 'A', ['+noedns', '+ignore']);
    expect(udp.flags).toContain('tc');
    expect(udp.answer).toEqual([]);
    const edns = await dig(server, 'big.default.ployz.internal', 'A', ['+bufsize=4096', '+ignore']);
    // 60 A records are 960 bytes of answers: they fit the 1232 bytes we allow with EDNS.
    expect(edns.flags).not.toContain('tc');
    expect(edns.answer).toHaveLength(60);
    const tcp = await dig(server, 'big.default.ployz.internal', 'A', ['+tcp']);
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answer).toHaveLength(60);
    const small = await dig(server, 'web.default.ployz.internal', 'A', ['+tcp']);
    expect(small.answer).toHaveLength(2);
  });

  it('forwards names outside the zone upstream and answers SERVFAIL when upstreams fail', async () => {
    const before = upstream.queries;
    const r = await dig(server, 'example.test');
    expect(r.status).toBe('NOERROR');
    expect(r.flags).not.toContain('aa');
    expect(r.answer[0]?.[4]).toBe('192.0.2.7');
    expect(upstream.queries).toBe(before + 1);
    expect(Number(r.answer[0]?.[1])).toBe(300);
    // A repeat is answered from the forward cache: the upstream is not asked again.
    const repeat = await dig(server, 'EXAMPLE.test');
    expect(repeat.answer[0]?.[4]).toBe('192.0.2.7');
    expect(Number(repeat.answer[0]?.[1])).toBe(300);
    expect(upstream.queries).toBe(before + 1);
    // The cached TTL counts down with the cache's clock: 100.5 s later it is 200, then 1 ...
    const ttlAfter = async (ms: number) => {
      cacheNowMs += ms;
      const later = await dig(server, 'example.test');
      expect(later.answer[0]?.[4]).toBe('192.0.2.7');
      return Number(later.answer[0]?.[1]);
    };
    expect(await ttlAfter(100_500)).toBe(200);
    expect(await ttlAfter(198_900)).toBe(1);
    expect(upstream.queries).toBe(before + 1);
    // ... and at 300 s the answer has expired: the upstream is asked again, with a fresh 300.
    expect(await ttlAfter(600)).toBe(300);
    expect(upstream.queries).toBe(before + 2);
    // NXDOMAIN without an SOA is not cached (RFC 2308): asked again each time.
    const missing = await dig(server, 'missing.test');
    expect(missing.status).toBe('NXDOMAIN');
    await dig(server, 'missing.test');
    expect(upstream.queries).toBe(before + 4);

    await using silent = await startUpstream({}, true);
    await using failing = await startDnsService({
      feed,
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: null,
      upstreams: [{ host: silent.host, port: silent.port }],
      upstreamTimeoutMs: 200,
    });
    const fail = await dig(failing.dnsAddresses[0] ?? server, 'example.test');
    expect(fail.status).toBe('SERVFAIL');
    // Answered by our own upstream timeout (200 ms), not left for dig's 3 s to give up on.
    expect(failing.forwarder.timeouts).toBe(1);
    expect(failing.forwarder.failures).toBe(1);
    expect(silent.queries).toBe(1);
  });

  it('asks upstream again over TCP when a TCP client gets a truncated UDP answer', async () => {
    const udp = await dig(server, 'large.test', 'A', ['+ignore']);
    expect(udp.flags).toContain('tc');
    const before = upstream.tcpQueries;
    const tcp = await dig(server, 'large.test', 'A', ['+tcp']);
    expect(tcp.flags).not.toContain('tc');
    expect(tcp.answer[0]?.[4]).toBe('192.0.2.8');
    expect(upstream.tcpQueries).toBe(before + 1);
  });

  it('shows a routing event in DNS', async () => {
    const seq = feed.publish({
      type: 'instance_upserted',
      instance: instanceRecord('default', 'db', 0, { id: 'db-0', ip: '10.210.1.21', ports: { pg: 5432 } }),
      deploy_id: null,
      at: '2026-01-01T00:00:01Z',
    });
    await dns.follower.waitForSeq(seq, 2000);
    const r = await dig(server, 'db.default.ployz.internal');
    expect(r.answer.map((rr) => rr[4])).toEqual(['10.210.1.21']);
  });

  it('reports health, status and metrics on the admin listener', async () => {
    const base = `http://127.0.0.1:${dns.adminAddress?.port}`;
    const health = await fetch(`${base}/_ployz/health`);
    expect(health.status).toBe(200);
    const status = (await (await fetch(`${base}/_ployz/status`)).json()) as {
      ready: boolean;
      names: number;
      freshness: { appliedSeq: number; stale: boolean };
    };
    expect(status.ready).toBe(true);
    expect(status.names).toBeGreaterThan(10);
    expect(status.freshness.appliedSeq).toBe(feed.seq);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^ployz_dns_queries_total [1-9]\d*$/m);
    expect(metrics).toMatch(/^ployz_dns_forwarded_total [1-9]\d*$/m);
    expect(metrics).toMatch(/^ployz_dns_cache_hits_total [1-9]\d*$/m);
    expect(metrics).toMatch(/^ployz_dns_cache_entries [1-9]\d*$/m);
    // Nothing this suite sent made answering throw.
    expect(metrics).toMatch(/^ployz_dns_internal_errors_total 0$/m);
    expect(metrics).toContain(`ployz_dns_view_seq ${feed.seq}`);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
  });
});
