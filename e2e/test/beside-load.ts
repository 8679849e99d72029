/**
 * Load loops for replace-beside (docs/adr/0014-replace-beside.md): HTTP through the gateway (a
 * keep-alive client and a connection-per-request client) and DNS queries to ployz-dns over UDP and
 * TCP, each recording every failure. Used by e2e/test/upgrade-beside.test.ts and
 * bench/daemon-restart.ts.
 */
import { createSocket } from 'node:dgram';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { gatewayGet } from './deploy-harness.ts';

export interface LoadTally {
  ok: number;
  failed: string[];
  /** UDP queries answered only on their retry (DNS loop). */
  retried: number;
}

export interface Loop {
  tally: LoadTally;
  stop(): Promise<LoadTally>;
}

function loop(once: (tally: LoadTally) => Promise<string | null>, pauseMs: number): Loop {
  const tally: LoadTally = { ok: 0, failed: [], retried: 0 };
  let running = true;
  const done = (async () => {
    while (running) {
      const failure = await once(tally).catch((e: unknown) => String(e));
      if (failure === null) tally.ok += 1;
      else tally.failed.push(`${new Date().toISOString()} ${failure}`);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    tally,
    stop: async () => {
      running = false;
      await done;
      return tally;
    },
  };
}

/** GET / on the gateway for `hostHeader` until stopped; anything but 200 with `expect` fails. */
export function httpLoop(
  target: { host: string; port: number; hostHeader: string; expect: string },
  keepAlive: boolean,
): Loop {
  const agent = new Agent({ keepAlive, maxSockets: 1 });
  const l = loop(async () => {
    const r = await gatewayGet({ ...target, path: '/', agent, timeoutMs: 5000 });
    return r.status === 200 && r.body.includes(target.expect) ? null : `${r.status} ${r.body.slice(0, 80)}`;
  }, 0);
  return {
    tally: l.tally,
    stop: async () => {
      const t = await l.stop();
      agent.destroy();
      return t;
    },
  };
}

/**
 * Resolves once the gateway answers `target` with its body: a first gateway binds only after its
 * first table (up to its start wait), so a loop started earlier counts its start as failures.
 */
export async function waitServing(
  target: { host: string; port: number; hostHeader: string; expect: string },
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await gatewayGet({ ...target, path: '/', timeoutMs: 2000 }).catch(() => null);
    if (r?.status === 200 && r.body.includes(target.expect)) return;
    if (Date.now() > deadline)
      throw new Error(`the gateway never served ${target.hostHeader}: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** A query for `name` A IN, id 0x5a5a, RD. */
function query(name: string): Buffer {
  const labels = name.split('.').filter(Boolean);
  const parts = [Buffer.from('5a5a01000001000000000000', 'hex')];
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'ascii'));
  parts.push(Buffer.from([0, 0, 1, 0, 1]));
  return Buffer.concat(parts);
}

/** null when the reply is ours and answered from a view (not SERVFAIL), else why not. */
function judge(reply: Buffer): string | null {
  if (reply.readUInt16BE(0) !== 0x5a5a) return 'bad id';
  const rcode = (reply[3] ?? 0) & 0x0f;
  return rcode === 2 ? 'SERVFAIL' : null;
}

function udpOnce(host: string, port: number, name: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const finish = (r: string | null) => {
      clearTimeout(t);
      s.close();
      resolve(r);
    };
    const t = setTimeout(() => finish('udp timeout'), timeoutMs);
    s.on('message', (m) => finish(judge(m)));
    s.on('error', (e) => finish(`udp ${e.message}`));
    s.send(query(name), port, host);
  });
}

function tcpOnce(host: string, port: number, name: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const q = query(name);
    const len = Buffer.alloc(2);
    len.writeUInt16BE(q.length);
    const s = connect({ host, port });
    let buf = Buffer.alloc(0);
    const finish = (r: string | null) => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => finish('tcp timeout'));
    s.on('error', (e) => finish(`tcp ${(e as NodeJS.ErrnoException).code ?? e.message}`));
    s.on('connect', () => s.write(Buffer.concat([len, q])));
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) finish(judge(buf.subarray(2)));
    });
  });
}

/**
 * One query for `name` over UDP, then one over TCP, until stopped. UDP is given one retry after
 * 1 s, as every stub resolver does (a datagram in the closing socket's queue is lost with it).
 */
export function dnsLoop(host: string, port: number, name: string): Loop {
  return loop(async (tally) => {
    let udp = await udpOnce(host, port, name, 1000);
    if (udp !== null) {
      tally.retried += 1;
      udp = await udpOnce(host, port, name, 2000);
    }
    if (udp !== null) return udp;
    return tcpOnce(host, port, name, 3000);
  }, 5);
}
