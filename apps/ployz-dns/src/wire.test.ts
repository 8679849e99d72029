import { describe, expect, it } from 'vitest';
import {
  buildErrorResponse,
  ipv6Bytes,
  parseQuery,
  RCODE_BADVERS,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  TYPE_A,
  TYPE_AAAA,
  udpLimit,
} from './wire.ts';

function name(text: string): number[] {
  return [...text.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]), 0];
}

function query(options: {
  id?: number;
  flags?: [number, number];
  counts?: [number, number, number, number];
  qname?: number[];
  tail?: number[];
}): Buffer {
  const [qd, an, ns, ar] = options.counts ?? [1, 0, 0, 0];
  const id = options.id ?? 0xbeef;
  return Buffer.from([
    id >> 8,
    id & 0xff,
    ...(options.flags ?? [0x01, 0x00]),
    0,
    qd,
    0,
    an,
    0,
    ns,
    0,
    ar,
    ...(options.qname ?? name('web.default.ployz.internal')),
    ...(options.tail ?? [0, TYPE_A, 0, 1]),
  ]);
}

const OPT = (size: number, version = 0) => [0, 0, 41, size >> 8, size & 0xff, 0, version, 0, 0, 0, 0];

describe('parseQuery', () => {
  it('parses a plain query and a query with EDNS', () => {
    const plain = parseQuery(query({}));
    expect(plain).toMatchObject({ kind: 'query', id: 0xbeef, qtype: TYPE_A, qclass: 1, ednsSize: null });
    const edns = parseQuery(query({ counts: [1, 0, 0, 1], tail: [0, TYPE_AAAA, 0, 1, ...OPT(4096)] }));
    expect(edns).toMatchObject({ kind: 'query', qtype: TYPE_AAAA, ednsSize: 4096, ednsVersion: 0 });
    expect(parseQuery(query({ counts: [1, 0, 0, 1], tail: [0, 1, 0, 1, ...OPT(1232, 1)] }))).toMatchObject({
      ednsVersion: 1,
    });
  });

  it('drops what cannot be answered: shorter than a header, or a response', () => {
    expect(parseQuery(Buffer.alloc(11))).toEqual({ kind: 'drop', reason: 'short' });
    expect(parseQuery(query({ flags: [0x81, 0x80] }))).toEqual({ kind: 'drop', reason: 'response' });
  });

  it.each([
    ['no question', query({ counts: [0, 0, 0, 0], qname: [], tail: [] })],
    ['two questions', query({ counts: [2, 0, 0, 0] })],
    ['truncated name', query({ qname: [3, 0x77, 0x65], tail: [] })],
    ['truncated type', query({ tail: [0, 1] })],
    ['pointer in the question', query({ qname: [0xc0, 12] })],
    ['self-pointing question', query({ qname: [3, 0x61, 0x62, 0x63, 0xc0, 12] })],
    ['reserved label type', query({ qname: [0x41, 0x61] })],
    [
      'name over 255 bytes',
      query({ qname: [...Array.from({ length: 5 }, () => [63, ...Buffer.alloc(63, 0x61)]).flat(), 0] }),
    ],
    ['answer count without answers', query({ counts: [1, 5, 0, 0] })],
    ['additional count without records', query({ counts: [1, 0, 0, 3] })],
    [
      'OPT with rdata past the end',
      query({ counts: [1, 0, 0, 1], tail: [0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 9] }),
    ],
    ['two OPT records', query({ counts: [1, 0, 0, 2], tail: [0, 1, 0, 1, ...OPT(512), ...OPT(512)] })],
  ])('answers FORMERR for %s', (_, packet) => {
    const parsed = parseQuery(packet);
    expect(parsed.kind).toBe('reject');
    if (parsed.kind === 'reject') expect(parsed.rcode).toBe(RCODE_FORMERR);
  });

  it('answers NOTIMP for other opcodes', () => {
    expect(parseQuery(query({ flags: [0x28, 0x00] }))).toMatchObject({ kind: 'reject', rcode: RCODE_NOTIMP });
  });

  it('skips compressed names in additional records without following loops', () => {
    // An additional record whose owner is a pointer to itself: skipped (2 bytes), not followed.
    const loop = query({ counts: [1, 0, 0, 1], tail: [0, 1, 0, 1, 0xc0, 44, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0] });
    expect(parseQuery(loop)).toMatchObject({ kind: 'query' });
  });
});

describe('error responses', () => {
  it('keep the ID, set QR and the rcode, echo the question when it parsed, add OPT for BADVERS', () => {
    const q = query({});
    const formerr = buildErrorResponse(q, RCODE_FORMERR, null, null);
    expect(formerr.length).toBe(12);
    expect(formerr.readUInt16BE(0)).toBe(0xbeef);
    expect((formerr[2] as number) & 0x80).toBe(0x80);
    expect((formerr[3] as number) & 0x0f).toBe(RCODE_FORMERR);
    expect(formerr.readUInt16BE(4)).toBe(0);
    const badvers = buildErrorResponse(q, RCODE_BADVERS, q.length, null);
    expect(badvers.readUInt16BE(4)).toBe(1);
    expect(badvers.readUInt16BE(10)).toBe(1);
    expect((badvers[3] as number) & 0x0f).toBe(0);
    expect(badvers[q.length + 5]).toBe(1); // extended rcode 16 >> 4
  });
});

describe('encoders', () => {
  it('encodes IPv6 text forms to bytes', () => {
    expect(ipv6Bytes('fd00::10').toString('hex')).toBe('fd000000000000000000000000000010');
    expect(ipv6Bytes('::1').toString('hex')).toBe('00000000000000000000000000000001');
    expect(ipv6Bytes('2001:db8:1:2:3:4:5:6').toString('hex')).toBe('20010db8000100020003000400050006');
    expect(ipv6Bytes('::ffff:10.1.2.3').toString('hex')).toBe('00000000000000000000ffff0a010203');
    expect(() => ipv6Bytes('10.0.0.1')).toThrow(RangeError);
  });

  it('limits UDP answers to 512 without EDNS and to [512, 1232] with it', () => {
    expect(udpLimit(null)).toBe(512);
    expect(udpLimit(100)).toBe(512);
    expect(udpLimit(1000)).toBe(1000);
    expect(udpLimit(4096)).toBe(1232);
  });
});
