import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { MemoryRoutingFeed, ProjectionState, projectDns } from '@ployz/routing';
import dns2 from 'dns2';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAnswers } from '../src/answers.ts';
import { respond } from '../src/respond.ts';
import { type DnsService, startDnsService } from '../src/service.ts';
import { RCODE_SERVFAIL } from '../src/wire.ts';
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
// The same view the running server loads from MemoryRoutingFeed(SNAPSHOT) (seq 0: the SOA serial).
const TABLE = compileAnswers(projectDns(ProjectionState.fromSnapshot({ seq: 0, ...SNAPSHOT })));

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

/** Waits for `check` (a hang guard only: 10 s). */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('no answer within 10 s');
    await new Promise((r) => setTimeout(r, 1));
  }
}

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

/**
 * Edits that leave a query valid: another ID, RD/CD/AD flipped, letter case changed, EDNS added
 * with any payload size and DO bit. Its answer must be the unedited query's answer.
 */
const validEditArb = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  rd: fc.boolean(),
  cd: fc.boolean(),
  ad: fc.boolean(),
  upper: fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }),
  edns: fc.option(fc.record({ size: fc.integer({ min: 0, max: 0xffff }), do: fc.boolean() }), { nil: null }),
});
type ValidEdit = typeof validEditArb extends fc.Arbitrary<infer E> ? E : never;

function applyValidEdit(name: string, type: number, edit: ValidEdit): Buffer {
  const out = validQuery(edit.id, name, type, edit.edns !== null);
  out[2] = ((out[2] as number) & ~0x01) | (edit.rd ? 0x01 : 0);
  out[3] = ((out[3] as number) & ~0x30) | (edit.cd ? 0x10 : 0) | (edit.ad ? 0x20 : 0);
  for (let i = 13; i < 12 + name.length + 1; i++) {
    const b = out[i] as number;
    if (edit.upper[i - 13] && b >= 0x61 && b <= 0x7a) out[i] = b - 0x20;
  }
  if (edit.edns !== null) {
    const opt = out.length - 11; // dns2 writes OPT last: root, type 41, size, ext rcode, version, flags
    expect(out.readUInt16BE(opt + 1)).toBe(41);
    out.writeUInt16BE(edit.edns.size, opt + 3);
    out[opt + 7] = edit.edns.do ? 0x80 : 0;
  }
  return out;
}

/** What a client reads from an answer: rcode, AA, and the answer records (owner names folded). */
function meaning(response: Buffer) {
  const decoded = Packet.parse(response);
  return {
    rcode: decoded.header.rcode,
    aa: decoded.header.aa,
    tc: decoded.header.tc,
    answers: decoded.answers.map((rr) => JSON.stringify({ ...rr, name: rr.name.toLowerCase() })).sort(),
  };
}

/** Edits that break a query in one known way, and the rcode each must get (never SERVFAIL). */
const brokenEditArb = fc.oneof(
  fc.record({ kind: fc.constant('opcode' as const), value: fc.integer({ min: 1, max: 15 }) }),
  fc.record({
    kind: fc.constant('qdcount' as const),
    value: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 0xffff })),
  }),
  fc.record({ kind: fc.constant('transfer' as const), value: fc.constantFrom(251, 252) }),
  fc.record({ kind: fc.constant('ednsVersion' as const), value: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('pointer' as const), value: fc.integer({ min: 0, max: 0x3fff }) }),
  fc.record({ kind: fc.constant('cutQuestion' as const), value: fc.integer({ min: 1, max: 4 }) }),
);
type BrokenEdit = typeof brokenEditArb extends fc.Arbitrary<infer E> ? E : never;
const EXPECTED_RCODE = {
  opcode: 4, // NOTIMP
  qdcount: 1, // FORMERR
  transfer: 5, // REFUSED
  ednsVersion: 16, // BADVERS (extended: 1 in OPT, 0 in the header)
  pointer: 1, // FORMERR: a compression pointer as the question's first label
  cutQuestion: 1, // FORMERR: QTYPE/QCLASS cut short
} as const satisfies Record<BrokenEdit['kind'], number>;

function applyBrokenEdit(s: { id: number; name: string; type: number }, edit: BrokenEdit): Buffer {
  switch (edit.kind) {
    case 'opcode': {
      const out = validQuery(s.id, s.name, s.type, false);
      out[2] = ((out[2] as number) & 0x87) | (edit.value << 3);
      return out;
    }
    case 'qdcount': {
      const out = validQuery(s.id, s.name, s.type, false);
      out.writeUInt16BE(edit.value, 4);
      return out;
    }
    case 'transfer':
      return validQuery(s.id, s.name, edit.value, false);
    case 'ednsVersion': {
      const out = validQuery(s.id, s.name, s.type, true);
      out[out.length - 5] = edit.value;
      return out;
    }
    case 'pointer': {
      const out = validQuery(s.id, s.name, s.type, false);
      out.writeUInt16BE(0xc000 | edit.value, 12);
      return out;
    }
    case 'cutQuestion': {
      const out = validQuery(s.id, s.name, s.type, false);
      return out.subarray(0, out.length - edit.value);
    }
    default: {
      const never: never = edit;
      return never;
    }
  }
}

/** The full rcode of a response: header nibble plus the OPT record's extended bits. */
function fullRcode(response: Buffer): number {
  const decoded = Packet.parse(response);
  const opt = decoded.additionals.find((r) => r.type === Packet.TYPE.EDNS) as
    | { extendedRcode?: number }
    | undefined;
  return ((opt?.extendedRcode ?? 0) << 4) | decoded.header.rcode;
}

describe('malformed and random packets', () => {
  it('never throw in the answering path; every reply is a well-formed DNS response, never SERVFAIL (in-process)', () => {
    fc.assert(
      fc.property(packetArb, fc.boolean(), (packet, udp) => {
        const outcome = respond(TABLE, true, packet, '127.0.0.1', udp);
        if (outcome.kind === 'answer' || outcome.kind === 'error') checkResponse(packet, outcome.response);
        // With a loaded view, SERVFAIL only comes from an exception caught in respond(): a bug.
        // Every mutation that still parses must be answered, refused or forwarded, never that.
        if (outcome.kind === 'error') {
          expect(outcome.internal).toBeUndefined();
          expect(outcome.rcode).not.toBe(RCODE_SERVFAIL);
        }
        if (packet.length < 12) expect(outcome.kind).toBe('drop');
      }),
      { numRuns: 20_000 },
    );
  });

  it('answers a validly edited query (ID, flags, letter case, EDNS) exactly as the unedited one', () => {
    fc.assert(
      fc.property(seedArb, validEditArb, fc.boolean(), (s, edit, udp) => {
        const reference = respond(TABLE, true, validQuery(s.id, s.name, s.type, false), '127.0.0.1', udp);
        const query = applyValidEdit(s.name, s.type, edit);
        const outcome = respond(TABLE, true, query, '127.0.0.1', udp);
        expect(outcome.kind).toBe(reference.kind);
        if (outcome.kind !== 'answer' || reference.kind !== 'answer') return;
        checkResponse(query, outcome.response);
        expect(meaning(outcome.response)).toEqual(meaning(reference.response));
        // The caller's question comes back byte for byte (letter case too), RD and CD echoed.
        const questionEnd = 12 + s.name.length + 2 + 4;
        expect(outcome.response.subarray(12, questionEnd)).toEqual(query.subarray(12, questionEnd));
        expect((outcome.response[2] as number) & 0x01).toBe(edit.rd ? 0x01 : 0);
        expect((outcome.response[3] as number) & 0x10).toBe(edit.cd ? 0x10 : 0);
      }),
      { numRuns: 5_000 },
    );
  });

  it('answers each kind of broken query its own rcode: NOTIMP, FORMERR, REFUSED or BADVERS', () => {
    fc.assert(
      fc.property(seedArb, brokenEditArb, fc.boolean(), (s, edit, udp) => {
        const query = applyBrokenEdit(s, edit);
        const outcome = respond(TABLE, true, query, '127.0.0.1', udp);
        expect(outcome.kind).toBe('error');
        if (outcome.kind !== 'error') return;
        checkResponse(query, outcome.response);
        expect(outcome.rcode).toBe(EXPECTED_RCODE[edit.kind]);
        expect(fullRcode(outcome.response)).toBe(EXPECTED_RCODE[edit.kind]);
      }),
      { numRuns: 5_000 },
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
    const metrics = dns.server.metrics;
    expect(metrics.malformed).toBeGreaterThan(100);
    // Nothing threw while answering; every SERVFAIL sent is a forward that found no upstream
    // (there are none here), not an exception turned into SERVFAIL.
    expect(metrics.internalErrors).toBe(0);
    expect(metrics.forwarded).toBeGreaterThan(0);
    expect(metrics.servfail).toBe(dns.forwarder.failures);
  });

  it('answers validly edited queries over UDP and TCP as in process, and counts no internal error', async () => {
    const cases = fc.sample(fc.tuple(seedArb, validEditArb), { numRuns: 300, seed: 7 });
    const udp = createSocket('udp4');
    const tcp = connect(port, '127.0.0.1');
    await once(tcp, 'connect');
    let tcpBuffered = Buffer.alloc(0);
    const tcpReplies: Buffer[] = [];
    tcp.on('data', (chunk: Buffer) => {
      tcpBuffered = Buffer.concat([tcpBuffered, chunk]);
      while (tcpBuffered.length >= 2 && tcpBuffered.length >= 2 + tcpBuffered.readUInt16BE(0)) {
        tcpReplies.push(tcpBuffered.subarray(2, 2 + tcpBuffered.readUInt16BE(0)));
        tcpBuffered = tcpBuffered.subarray(2 + tcpBuffered.readUInt16BE(0));
      }
    });
    try {
      for (const [s, edit] of cases) {
        const query = applyValidEdit(s.name, s.type, edit);
        const reference = respond(TABLE, true, validQuery(s.id, s.name, s.type, false), '127.0.0.1', true);
        if (reference.kind !== 'answer') throw new Error(`${s.name} is not answered locally`);
        const reply = once(udp, 'message');
        udp.send(query, port, '127.0.0.1');
        const [overUdp] = (await reply) as [Buffer];
        checkResponse(query, overUdp);
        expect(meaning(overUdp), `${s.name} over UDP`).toEqual(meaning(reference.response));
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(query.length);
        const count = tcpReplies.length;
        tcp.write(Buffer.concat([prefix, query]));
        await until(() => tcpReplies.length > count);
        const overTcp = tcpReplies[count] as Buffer;
        checkResponse(query, overTcp);
        expect(meaning(overTcp), `${s.name} over TCP`).toEqual(meaning(reference.response));
      }
    } finally {
      udp.close();
      tcp.destroy();
    }
    expect(dns.server.metrics.internalErrors).toBe(0);
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
