import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { MemoryRoutingFeed, ProjectionState, projectDns } from '@ployz/routing';
import dns2 from 'dns2';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAnswers } from '../src/answers.ts';
import { respond } from '../src/respond.ts';
import { type DnsService, startDnsService } from '../src/service.ts';
import { dig } from './dig.ts';
import { cluster } from './records.ts';

const { Packet } = dns2;

const SNAPSHOT = cluster({
  default: {
    web: [
      { id: 'web-0', ip: '10.210.1.10', ip6: 'fd00::10', ports: { http: 8080 } },
      { id: 'web-1', ip: '10.210.1.11', ports: { http: 8080 } },
    ],
    caller: [{ id: 'caller-0', ip: '127.0.0.1' }],
  },
});
const TABLE = compileAnswers(projectDns(ProjectionState.fromSnapshot({ seq: 1, ...SNAPSHOT })));

const NAMES = [
  'web.default.ployz.internal',
  'web-0.web.default.ployz.internal',
  '_http._tcp.web.default.ployz.internal',
  'default.ployz.internal',
  'ployz.internal',
  'nope.default.ployz.internal',
  'web',
  'web.ployz.internal',
];
const TYPES = [1, 28, 33, 6, 255, 16];

/** A valid query, encoded by dns2 (an independent encoder), as the seed for mutations. */
function validQuery(id: number, name: string, type: number, edns: boolean): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question({ name, type, class: Packet.CLASS.IN }));
  if (edns) packet.additionals.push(Packet.Resource.EDNS([]));
  return packet.toBuffer();
}

const seedArb = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  name: fc.constantFrom(...NAMES),
  type: fc.constantFrom(...TYPES),
  edns: fc.boolean(),
});

const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('count' as const),
    which: fc.integer({ min: 0, max: 3 }),
    value: fc.integer({ min: 0, max: 0xffff }),
  }),
  fc.record({
    kind: fc.constant('pointer' as const),
    at: fc.nat(),
    target: fc.integer({ min: 0, max: 0x3fff }),
  }),
  fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 64 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
);
type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never;

function mutate(seed: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(seed);
  for (const m of mutations) {
    if (out.length === 0) break;
    switch (m.kind) {
      case 'flip': {
        const i = m.at % out.length;
        out[i] = (out[i] as number) ^ (1 << m.bit);
        break;
      }
      case 'truncate':
        out = out.subarray(0, m.at % (out.length + 1));
        break;
      case 'count':
        if (out.length >= 12) out.writeUInt16BE(m.value, 4 + m.which * 2);
        break;
      case 'pointer': {
        const i = m.at % out.length;
        if (i + 1 < out.length) out.writeUInt16BE(0xc000 | m.target, i);
        break;
      }
      case 'append':
        out = Buffer.concat([out, m.bytes]);
        break;
      case 'byte':
        out[m.at % out.length] = m.value;
        break;
    }
  }
  return out;
}

const packetArb = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b)) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(seedArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
      .map(([s, m]) => mutate(validQuery(s.id, s.name, s.type, s.edns), m)),
  },
);

/** What any response we send must look like, checked without trusting our own parser. */
function checkResponse(query: Buffer, response: Buffer): void {
  expect(response.length).toBeGreaterThanOrEqual(12);
  expect(response.readUInt16BE(0)).toBe(query.readUInt16BE(0));
  expect((response[2] as number) & 0x80).toBe(0x80);
  const decoded = Packet.parse(response);
  expect(decoded.errors).toEqual([]);
}

describe('malformed and random packets', () => {
  it('never throw in the answering path; every reply is a well-formed DNS response (in-process)', () => {
    fc.assert(
      fc.property(packetArb, fc.boolean(), (packet, udp) => {
        const outcome = respond(TABLE, true, packet, '127.0.0.1', udp);
        if (outcome.kind === 'answer' || outcome.kind === 'error') checkResponse(packet, outcome.response);
        if (packet.length < 12) expect(outcome.kind).toBe('drop');
      }),
      { numRuns: 20_000 },
    );
  });

  it('answers valid queries the way dns2 decodes them', () => {
    fc.assert(
      fc.property(seedArb, (s) => {
        const query = validQuery(s.id, s.name, s.type, s.edns);
        const outcome = respond(TABLE, true, query, '127.0.0.1', true);
        expect(['answer', 'forward']).toContain(outcome.kind);
        if (outcome.kind !== 'answer') return;
        const decoded = Packet.parse(outcome.response);
        expect(decoded.header.aa).toBe(1);
        expect(decoded.questions[0]?.name).toBe(s.name);
        for (const answer of decoded.answers) expect(answer.ttl).toBe(0);
        if (s.edns) expect(decoded.additionals.some((r) => r.type === Packet.TYPE.EDNS)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('the running server under fuzzing', () => {
  let dns: DnsService;
  let port: number;
  beforeAll(async () => {
    dns = await startDnsService({
      feed: new MemoryRoutingFeed(SNAPSHOT),
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: null,
      upstreams: [],
      upstreamTimeoutMs: 100,
    });
    await dns.follower.waitForSeq(0);
    port = dns.dnsAddresses[0]?.port ?? 0;
  });
  afterAll(async () => {
    await dns?.close();
  });

  it('survives random and mutated packets over UDP and TCP and keeps answering', async () => {
    const packets = fc.sample(packetArb, { numRuns: 3000, seed: 42 });
    packets.push(Buffer.alloc(65_000, 0xff), Buffer.alloc(0), Buffer.alloc(12));
    const udp = createSocket('udp4');
    const replies: Buffer[] = [];
    udp.on('message', (msg) => replies.push(msg));
    for (const [i, packet] of packets.entries()) {
      udp.send(packet, port, '127.0.0.1');
      if (i % 100 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    // The same over one TCP connection, length-prefixed, including a frame cut short at the end.
    await new Promise<void>((resolve, reject) => {
      const tcp = connect(port, '127.0.0.1', () => {
        for (const packet of packets.slice(0, 500)) {
          const prefix = Buffer.alloc(2);
          prefix.writeUInt16BE(Math.min(packet.length, 0xffff));
          tcp.write(Buffer.concat([prefix, packet.subarray(0, 0xffff)]));
        }
        tcp.end(Buffer.from([0x00, 0x40, 1, 2, 3]));
      });
      tcp.on('data', () => {});
      tcp.on('close', () => resolve());
      tcp.on('error', reject);
    });
    await new Promise((r) => setTimeout(r, 200));
    udp.close();
    expect(replies.length).toBeGreaterThan(100);
    for (const reply of replies) expect((reply[2] as number) & 0x80).toBe(0x80);
    const after = await dig({ host: '127.0.0.1', port }, 'web.default.ployz.internal');
    expect(after.answer).toHaveLength(2);
    expect(dns.server.metrics.malformed).toBeGreaterThan(100);
  });

  it('answers FORMERR to a broken question and NOTIMP to other opcodes, over the wire', async () => {
    const ask = (packet: Buffer) =>
      new Promise<Buffer>((resolve) => {
        const s = createSocket('udp4');
        s.on('message', (msg) => {
          s.close();
          resolve(msg);
        });
        s.send(packet, port, '127.0.0.1');
      });
    const broken = validQuery(7, 'web.default.ployz.internal', 1, false);
    broken[12] = 0xc0; // compression pointer at the start of the question
    const formerr = await ask(broken);
    expect((formerr[3] as number) & 0x0f).toBe(1);
    const notify = validQuery(8, 'web.default.ployz.internal', 1, false);
    notify[2] = 0x20; // opcode 4 (NOTIFY)
    const notimp = await ask(notify);
    expect((notimp[3] as number) & 0x0f).toBe(4);
  });
});
