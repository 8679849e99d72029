/**
 * Hostile peers against the real ployz-dns listeners (real sockets on loopback): names that only
 * look in-zone, zone transfers, TCP clients that drip or never read, and an upstream that spoofs.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { MemoryRoutingFeed } from '@ployz/routing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder } from '../src/forwarder.ts';
import { type DnsService, startDnsService } from '../src/service.ts';
import { dig } from './dig.ts';
import { cluster } from './records.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

const SNAPSHOT = cluster({
  default: {
    web: [{ id: 'web-0', ip: '10.210.1.10' }],
    big: Array.from({ length: 60 }, (_, i) => ({ id: `big-${i}`, ip: `10.210.2.${i + 1}` })),
  },
});

/** A query for `name` (dotted, no escapes) and `type`, with this ID. */
function query(name: string, type: number, id = 0x1234): Buffer {
  const labels = name
    .split('.')
    .map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)]));
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header[2] = 0x01; // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...labels, tail]);
}

function framed(msg: Buffer): Buffer {
  const prefix = Buffer.alloc(2);
  prefix.writeUInt16BE(msg.length);
  return Buffer.concat([prefix, msg]);
}

async function askUdp(port: number, msg: Buffer): Promise<Buffer> {
  const socket = createSocket('udp4');
  try {
    const reply = once(socket, 'message');
    socket.send(msg, port, '127.0.0.1');
    const [response] = (await reply) as [Buffer];
    return response;
  } finally {
    socket.close();
  }
}

const rcodeOf = (msg: Buffer) => (msg[3] as number) & 0x0f;

/** Polls `check` (after `step`, if given) until it holds; the timeout is a hang guard only. */
async function until(
  what: string,
  check: () => boolean,
  timeoutMs = 10_000,
  step?: () => Promise<void>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await step?.();
    if (check()) return;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('zone membership and zone transfers', () => {
  let dns: DnsService;
  let upstream: TestUpstream;
  let port: number;
  beforeAll(async () => {
    upstream = await startUpstream({});
    dns = await startDnsService({
      feed: new MemoryRoutingFeed(SNAPSHOT),
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: null,
      upstreams: [{ host: upstream.host, port: upstream.port }],
      upstreamTimeoutMs: 1000,
    });
    await dns.follower.waitForSeq(0);
    port = dns.dnsAddresses[0]?.port ?? 0;
  });
  afterAll(async () => {
    await dns?.close();
    await upstream?.close();
  });

  it('matches the zone on label boundaries: a label holding the bytes \\005ployz is not in it', async () => {
    const before = upstream.queries;
    // Labels `a\005ployz`, `internal`: its wire bytes end like ployz.internal, its labels do not.
    const r = await dig({ host: '127.0.0.1', port }, 'a\\005ployz.internal');
    expect(r.flags).not.toContain('aa');
    expect(upstream.queries).toBe(before + 1);
    const web = await dig({ host: '127.0.0.1', port }, 'web\\005ployz.internal');
    expect(web.flags).not.toContain('aa');
    expect(upstream.queries).toBe(before + 2);
    // The real zone still answers authoritatively.
    const inZone = await dig({ host: '127.0.0.1', port }, 'web.default.ployz.internal');
    expect(inZone.flags).toContain('aa');
    expect(inZone.answer.map((rr) => rr[4])).toEqual(['10.210.1.10']);
  });

  it('answers ANY at the apex with the SOA', async () => {
    const r = await dig({ host: '127.0.0.1', port }, 'ployz.internal', 'ANY');
    expect(r.status).toBe('NOERROR');
    expect(r.flags).toContain('aa');
    expect(r.answer.map((rr) => rr[3])).toEqual(['SOA']);
  });

  it('refuses AXFR and IXFR, over UDP and TCP, in the zone and outside it', async () => {
    const before = upstream.queries;
    for (const type of [252, 251]) {
      expect(rcodeOf(await askUdp(port, query('ployz.internal', type)))).toBe(5);
      expect(rcodeOf(await askUdp(port, query('example.test', type)))).toBe(5);
    }
    const tcp = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    tcp.on('data', (chunk: Buffer) => chunks.push(chunk));
    tcp.write(framed(query('ployz.internal', 252)));
    await until('the AXFR answer', () => Buffer.concat(chunks).length >= 4);
    tcp.destroy();
    expect(rcodeOf(Buffer.concat(chunks).subarray(2))).toBe(5);
    expect(upstream.queries).toBe(before);
  });
});

describe('TCP clients that drip or crowd in', () => {
  let dns: DnsService;
  let port: number;
  beforeAll(async () => {
    dns = await startDnsService({
      feed: new MemoryRoutingFeed(SNAPSHOT),
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: null,
      upstreams: [],
      upstreamTimeoutMs: 100,
      tcp: { messageMs: 500, maxPerSource: 4 },
    });
    await dns.follower.waitForSeq(0);
    port = dns.dnsAddresses[0]?.port ?? 0;
  });
  afterAll(async () => {
    await dns?.close();
  });

  async function open(): Promise<Socket> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    return socket;
  }

  /** One framed question on `socket`: its answer, or null when the server closed instead. */
  async function ask(socket: Socket, name: string): Promise<Buffer | null> {
    return new Promise((resolve) => {
      let buffered = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          socket.off('data', onData);
          resolve(buffered.subarray(2));
        }
      };
      socket.on('data', onData);
      socket.once('close', () => resolve(null));
      socket.write(framed(query(name, 1)));
    });
  }

  it('closes a connection whose message does not arrive whole in time, however it drips', async () => {
    const socket = await open();
    let closed = false;
    let answered = false;
    socket.on('close', () => {
      closed = true;
    });
    socket.on('data', () => {
      answered = true;
    });
    const msg = framed(query('web.default.ployz.internal', 1));
    // One byte every 100 ms (each would reset an idle timer), never the last one: the message
    // never completes. The server must close it on its message deadline (tcpSlow), not on idle.
    for (let i = 0; i < msg.length - 1 && !closed; i++) {
      socket.write(msg.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 100));
    }
    await until('the server closing the dripping connection', () => closed);
    expect(answered).toBe(false);
    expect(dns.server.metrics.tcpSlow).toBe(1);
    // Others are served as before.
    const other = await open();
    const answer = await ask(other, 'web.default.ployz.internal');
    expect(answer === null ? -1 : rcodeOf(answer)).toBe(0);
    other.destroy();
  });

  it('caps the connections open from one source address', async () => {
    const held = await Promise.all([open(), open(), open(), open()]);
    for (const socket of held) expect(await ask(socket, 'web.default.ployz.internal')).not.toBeNull();
    const extra = await open();
    expect(await ask(extra, 'web.default.ployz.internal')).toBeNull();
    expect(dns.server.metrics.tcpRefused).toBeGreaterThanOrEqual(1);
    // Closing one frees its slot (once the server has seen the close: poll, hang guard only).
    held.pop()?.destroy();
    let again: Buffer | null = null;
    await until(
      'a fifth connection served after one closed',
      () => again !== null,
      10_000,
      async () => {
        const socket = await open();
        again = await ask(socket, 'web.default.ployz.internal');
        socket.destroy();
      },
    );
    expect(again === null ? -1 : rcodeOf(again)).toBe(0);
    for (const socket of held) socket.destroy();
  });
});

describe('backpressure on TCP replies', () => {
  it('stops reading from a client that does not read its answers, and loses none', async () => {
    await using dns = await startDnsService({
      feed: new MemoryRoutingFeed(SNAPSHOT),
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: null,
      upstreams: [],
      upstreamTimeoutMs: 100,
    });
    await dns.follower.waitForSeq(0);
    const socket = connect(dns.dnsAddresses[0]?.port ?? 0, '127.0.0.1');
    await once(socket, 'connect');
    socket.pause(); // never reads: the answers (about 1 KB each) pile up
    const count = 30_000;
    const one = framed(query('big.default.ployz.internal', 1));
    socket.write(Buffer.concat(Array.from({ length: count }, () => one)));
    const before = dns.server.metrics.queries;
    // Wait until the server has stopped taking queries (three quiet polls in a row).
    let last = -1;
    let quiet = 0;
    while (quiet < 3) {
      await new Promise((r) => setTimeout(r, 100));
      const now = dns.server.metrics.queries;
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
    expect(last - before).toBeGreaterThan(0);
    expect(last - before).toBeLessThan(count / 2);
    // Reading again lets it finish: every query gets its answer.
    let frames = 0;
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
        frames += 1;
      }
    });
    socket.resume();
    await until('every answer', () => frames === count, 60_000);
    socket.destroy();
  }, 90_000);
});

/**
 * An upstream on loopback that, before its true answer, sends a reply with the wrong ID, one for
 * another name, one for another type, and a correct one from another port. Records source ports.
 */
async function startHostileUpstream(): Promise<{
  port: number;
  sourcePorts: number[];
  close(): Promise<void>;
}> {
  const socket = createSocket('udp4');
  const other: UdpSocket = createSocket('udp4');
  const sourcePorts: number[] = [];
  const reply = (msg: Buffer, ip: string, edit: (out: Buffer, questionEnd: number) => void): Buffer => {
    let offset = 12;
    while ((msg[offset] as number) !== 0) offset += (msg[offset] as number) + 1;
    const questionEnd = offset + 5;
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(300, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((octet, i) => {
      rr[12 + i] = Number(octet);
    });
    const out = Buffer.concat([msg.subarray(0, questionEnd), rr]);
    out[2] = 0x81;
    out[3] = 0x80;
    out.writeUInt16BE(1, 6);
    out.writeUInt32BE(0, 8);
    edit(out, questionEnd);
    return out;
  };
  socket.on('message', (msg, rinfo) => {
    sourcePorts.push(rinfo.port);
    const to = (out: Buffer, from = socket) => from.send(out, rinfo.port, rinfo.address);
    to(
      reply(msg, '6.6.6.1', () => {}),
      other,
    );
    to(
      reply(msg, '6.6.6.2', (out) => {
        out[1] = (out[1] as number) ^ 0x01;
      }),
    );
    to(
      reply(msg, '6.6.6.3', (out) => {
        out[13] = 0x78; // first letter of the name: another name, same shape
      }),
    );
    to(
      reply(msg, '6.6.6.4', (out, questionEnd) => {
        out.writeUInt16BE(28, questionEnd - 4); // AAAA in the question
      }),
    );
    setTimeout(() => {
      // The true answer, with the name in other letter case (0x20 style): still the question.
      to(
        reply(msg, '192.0.2.1', (out, questionEnd) => {
          for (let i = 12; i < questionEnd - 4; i++) {
            const b = out[i] as number;
            if (b >= 0x61 && b <= 0x7a) out[i] = b - 0x20;
          }
        }),
      );
    }, 20);
  });
  socket.bind(0, '127.0.0.1');
  other.bind(0, '127.0.0.1');
  await Promise.all([once(socket, 'listening'), once(other, 'listening')]);
  return {
    port: socket.address().port,
    sourcePorts,
    close: async () => {
      socket.close();
      other.close();
    },
  };
}

describe('the forwarder against a spoofing upstream (RFC 5452)', () => {
  it('accepts only the reply to its question, from the upstream asked, and caches only that', async () => {
    const hostile = await startHostileUpstream();
    await using dns = await startDnsService({
      feed: new MemoryRoutingFeed(SNAPSHOT),
      listen: [{ host: '127.0.0.1', port: 0 }],
      admin: { host: '127.0.0.1', port: 0 },
      upstreams: [{ host: '127.0.0.1', port: hostile.port }],
      upstreamTimeoutMs: 2000,
    });
    await dns.follower.waitForSeq(0);
    const server = dns.dnsAddresses[0] ?? { host: '', port: 0 };
    try {
      const r = await dig(server, 'good.test');
      expect(r.answer.map((rr) => rr[4])).toEqual(['192.0.2.1']);
      expect(dns.forwarder.rejected).toBe(4);
      const cached = await dig(server, 'good.test');
      expect(cached.answer.map((rr) => rr[4])).toEqual(['192.0.2.1']);
      expect(hostile.sourcePorts).toHaveLength(1);
      const metrics = await (await fetch(`http://127.0.0.1:${dns.adminAddress?.port}/metrics`)).text();
      expect(metrics).toMatch(/^ployz_dns_upstream_rejected_total 4$/m);
      // Each query leaves from a port of its own.
      for (const name of ['a.test', 'b.test', 'c.test', 'd.test']) await dig(server, name);
      expect(new Set(hostile.sourcePorts).size).toBe(5);
    } finally {
      await hostile.close();
    }
  });
});

describe('the forwarder under a flood of queries to a silent upstream', () => {
  it('holds at most maxInFlight attempts (one socket each) and fails the rest at once', async () => {
    await using silent = await startUpstream({}, true);
    const forwarder = new Forwarder({
      upstreams: [{ host: silent.host, port: silent.port }],
      timeoutMs: 30_000,
      maxInFlight: 2,
    });
    try {
      const q = query('example.test', 1);
      const waiting = [forwarder.forward(q, q.length), forwarder.forward(q, q.length)];
      expect(await forwarder.forward(q, q.length)).toBeNull();
      expect(forwarder.overloaded).toBe(1);
      expect(forwarder.inFlight).toBe(2);
      await until('both attempts sent', () => silent.queries === 2);
      forwarder.close();
      expect(await Promise.all(waiting)).toEqual([null, null]);
    } finally {
      forwarder.close();
    }
  });
});
