import { describe, expect, it } from 'vitest';
import { ForwardCache } from './forward-cache.ts';
import {
  encodeName,
  encodeRecord,
  type ParsedQuery,
  parseQuery,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  soaRdata,
  TYPE_A,
  TYPE_AAAA,
  TYPE_OPT,
  TYPE_SOA,
} from './wire.ts';

/** Wire name with the letter case kept (encodeName lowercases). */
function casedName(text: string): Buffer {
  return Buffer.from([...text.split('.').flatMap((l) => [l.length, ...Buffer.from(l, 'latin1')]), 0]);
}

function opt(doBit = false): Buffer {
  return Buffer.from([0, TYPE_OPT >> 8, TYPE_OPT & 0xff, 0x04, 0xd0, 0, 0, doBit ? 0x80 : 0, 0, 0, 0]);
}

interface QueryOptions {
  id?: number;
  qtype?: number;
  rd?: boolean;
  edns?: 'none' | 'plain' | 'do';
}

function makeQuery(qname: string, o: QueryOptions = {}): { msg: Buffer; parsed: ParsedQuery } {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(o.id ?? 0x1234, 0);
  header[2] = o.rd === false ? 0 : 0x01;
  header.writeUInt16BE(1, 4);
  const edns = o.edns ?? 'none';
  header.writeUInt16BE(edns === 'none' ? 0 : 1, 10);
  const question = Buffer.concat([casedName(qname), Buffer.from([0, o.qtype ?? TYPE_A, 0, 1])]);
  const msg = Buffer.concat([header, question, ...(edns === 'none' ? [] : [opt(edns === 'do')])]);
  const parsed = parseQuery(msg);
  if (parsed.kind !== 'query') throw new Error('test query did not parse');
  return { msg, parsed };
}

interface ResponseOptions {
  rcode?: number;
  tc?: boolean;
  answers?: Buffer[];
  authority?: Buffer[];
  additional?: Buffer[];
}

/** An upstream response to `query`: the question echoed, then the given sections. */
function makeResponse(query: Buffer, parsed: ParsedQuery, o: ResponseOptions = {}): Buffer {
  const header = Buffer.from(query.subarray(0, 12));
  header[2] = 0x80 | ((query[2] as number) & 0x01) | (o.tc ? 0x02 : 0);
  header[3] = 0x80 | (o.rcode ?? RCODE_NOERROR);
  const answers = o.answers ?? [];
  const authority = o.authority ?? [];
  const additional = o.additional ?? [];
  header.writeUInt16BE(answers.length, 6);
  header.writeUInt16BE(authority.length, 8);
  header.writeUInt16BE(additional.length, 10);
  return Buffer.concat([
    header,
    query.subarray(12, parsed.questionEnd),
    ...answers,
    ...authority,
    ...additional,
  ]);
}

const aRecord = (ttl: number, ip = [192, 0, 2, 7]) => encodeRecord(null, TYPE_A, ttl, Buffer.from(ip));
const soa = (ttl: number, minimum: number) =>
  encodeRecord(encodeName('test'), TYPE_SOA, ttl, soaRdata('ns.test', 'admin.test', 1, minimum));

/** TTLs of every non-OPT record after the question, in order. */
function ttls(msg: Buffer, questionEnd: number): number[] {
  const out: number[] = [];
  let offset = questionEnd;
  const count = msg.readUInt16BE(6) + msg.readUInt16BE(8) + msg.readUInt16BE(10);
  for (let i = 0; i < count; i++) {
    let p = offset;
    while (msg[p] !== 0 && ((msg[p] as number) & 0xc0) !== 0xc0) p += (msg[p] as number) + 1;
    p += msg[p] === 0 ? 1 : 2;
    if (msg.readUInt16BE(p) !== TYPE_OPT) out.push(msg.readUInt32BE(p + 4));
    offset = p + 10 + msg.readUInt16BE(p + 8);
  }
  return out;
}

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('ForwardCache', () => {
  it('answers a repeat from the cache with the caller ID and letter case, TTLs lowered by age', () => {
    const c = clock();
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600, now: c.now });
    const first = makeQuery('example.test', { id: 1 });
    cache.put(first.msg, first.parsed, makeResponse(first.msg, first.parsed, { answers: [aRecord(300)] }));

    const again = makeQuery('ExAmPlE.TeSt', { id: 0xbeef });
    c.t += 100_500;
    const hit = cache.get(again.msg, again.parsed, 512) as Buffer;
    expect(hit).not.toBeNull();
    expect(hit.readUInt16BE(0)).toBe(0xbeef);
    expect(hit.subarray(12, again.parsed.questionEnd)).toEqual(
      again.msg.subarray(12, again.parsed.questionEnd),
    );
    expect(ttls(hit, again.parsed.questionEnd)).toEqual([200]);
    expect(cache.hits).toBe(1);

    c.t += 200_000; // 300.5 s after the answer came: expired
    expect(cache.get(again.msg, again.parsed, 512)).toBeNull();
    expect(cache.size).toBe(0);
  });

  it('folds only ASCII letter case: names differing in other bytes never share an entry', () => {
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600 });
    const upper = makeQuery('\xc9cole.test'); // É, latin1 0xC9
    cache.put(upper.msg, upper.parsed, makeResponse(upper.msg, upper.parsed, { answers: [aRecord(300)] }));
    const lower = makeQuery('\xe9cole.test'); // é, latin1 0xE9: another name
    expect(cache.get(lower.msg, lower.parsed, 512)).toBeNull();
    expect(cache.get(upper.msg, upper.parsed, 512)).not.toBeNull();
    const ascii = makeQuery('\xc9COLE.test');
    expect(cache.get(ascii.msg, ascii.parsed, 512)).not.toBeNull();
  });

  it('times an answer by its lowest TTL, capped by the ceiling; keeps the OPT record as it was', () => {
    const c = clock();
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 60, now: c.now });
    const q = makeQuery('two.test', { edns: 'plain' });
    cache.put(
      q.msg,
      q.parsed,
      makeResponse(q.msg, q.parsed, {
        answers: [aRecord(86_400), aRecord(7200, [192, 0, 2, 8])],
        additional: [opt()],
      }),
    );
    c.t += 59_000;
    const hit = cache.get(q.msg, q.parsed, 1232) as Buffer;
    expect(ttls(hit, q.parsed.questionEnd)).toEqual([86_341, 7141]);
    expect(hit.subarray(hit.length - 11)).toEqual(opt());
    c.t += 1000;
    expect(cache.get(q.msg, q.parsed, 1232)).toBeNull();
  });

  it('caches NXDOMAIN and NODATA for the SOA minimum (RFC 2308), never without an SOA', () => {
    const c = clock();
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600, now: c.now });
    const nx = makeQuery('gone.test');
    cache.put(
      nx.msg,
      nx.parsed,
      makeResponse(nx.msg, nx.parsed, { rcode: RCODE_NXDOMAIN, authority: [soa(600, 30)] }),
    );
    const nodata = makeQuery('gone.test', { qtype: TYPE_AAAA });
    cache.put(
      nodata.msg,
      nodata.parsed,
      makeResponse(nodata.msg, nodata.parsed, { authority: [soa(20, 300)] }),
    );
    const bare = makeQuery('bare.test');
    cache.put(bare.msg, bare.parsed, makeResponse(bare.msg, bare.parsed, { rcode: RCODE_NXDOMAIN }));

    c.t += 19_000;
    expect((cache.get(nx.msg, nx.parsed, 512)?.[3] ?? 0) & 0x0f).toBe(RCODE_NXDOMAIN);
    expect(cache.get(nodata.msg, nodata.parsed, 512)).not.toBeNull();
    expect(cache.get(bare.msg, bare.parsed, 512)).toBeNull();
    c.t += 2000; // 21 s: past the NODATA SOA TTL (20), within the NXDOMAIN minimum (30)
    expect(cache.get(nodata.msg, nodata.parsed, 512)).toBeNull();
    expect(cache.get(nx.msg, nx.parsed, 512)).not.toBeNull();
    c.t += 10_000;
    expect(cache.get(nx.msg, nx.parsed, 512)).toBeNull();
  });

  it('never caches failures, truncated answers, TTL 0 or malformed bytes', () => {
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600 });
    const q = makeQuery('x.test');
    const puts: Buffer[] = [
      makeResponse(q.msg, q.parsed, { rcode: RCODE_SERVFAIL }),
      makeResponse(q.msg, q.parsed, { rcode: RCODE_REFUSED }),
      makeResponse(q.msg, q.parsed, { tc: true, answers: [aRecord(300)] }),
      makeResponse(q.msg, q.parsed, { answers: [aRecord(0)] }),
      makeResponse(q.msg, q.parsed, { answers: [aRecord(300)] }).subarray(0, 38), // cut inside the A record
      Buffer.from([1, 2, 3]),
    ];
    for (const response of puts) cache.put(q.msg, q.parsed, response);
    expect(cache.size).toBe(0);
    expect(cache.get(q.msg, q.parsed, 512)).toBeNull();
  });

  it('keeps answers apart by type, recursion wanted and DNSSEC OK', () => {
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600 });
    const a = makeQuery('k.test');
    cache.put(a.msg, a.parsed, makeResponse(a.msg, a.parsed, { answers: [aRecord(300)] }));
    expect(cache.get(makeQuery('k.test').msg, makeQuery('k.test').parsed, 512)).not.toBeNull();
    for (const other of [
      makeQuery('k.test', { qtype: TYPE_AAAA }),
      makeQuery('k.test', { rd: false }),
      makeQuery('k.test', { edns: 'do' }),
      makeQuery('k.test', { edns: 'plain' }),
    ])
      expect(cache.get(other.msg, other.parsed, 1232)).toBeNull();
  });

  it('leaves an answer too big for the caller UDP limit to the upstream, serves it over TCP', () => {
    const cache = new ForwardCache({ maxEntries: 100, maxTtlSeconds: 3600 });
    const q = makeQuery('big.test');
    const answers = Array.from({ length: 40 }, (_, i) => aRecord(300, [192, 0, 2, i]));
    cache.put(q.msg, q.parsed, makeResponse(q.msg, q.parsed, { answers }));
    expect(cache.get(q.msg, q.parsed, 512)).toBeNull();
    expect(cache.get(q.msg, q.parsed, 0)?.readUInt16BE(6)).toBe(40);
  });

  it('evicts the least recently used answer first; 0 entries turns it off', () => {
    const cache = new ForwardCache({ maxEntries: 2, maxTtlSeconds: 3600 });
    const q = (n: string) => makeQuery(n);
    for (const n of ['a.test', 'b.test']) {
      const x = q(n);
      cache.put(x.msg, x.parsed, makeResponse(x.msg, x.parsed, { answers: [aRecord(300)] }));
    }
    expect(cache.get(q('a.test').msg, q('a.test').parsed, 512)).not.toBeNull(); // a is now recent
    const c = q('c.test');
    cache.put(c.msg, c.parsed, makeResponse(c.msg, c.parsed, { answers: [aRecord(300)] }));
    expect(cache.size).toBe(2);
    expect(cache.get(q('b.test').msg, q('b.test').parsed, 512)).toBeNull();
    expect(cache.get(q('a.test').msg, q('a.test').parsed, 512)).not.toBeNull();

    const off = new ForwardCache({ maxEntries: 0, maxTtlSeconds: 3600 });
    const x = q('a.test');
    off.put(x.msg, x.parsed, makeResponse(x.msg, x.parsed, { answers: [aRecord(300)] }));
    expect(off.size).toBe(0);
    expect(off.get(x.msg, x.parsed, 512)).toBeNull();
  });
});
