/**
 * Forwards queries outside the zone to upstream resolvers over UDP, one at a time in order,
 * each with a timeout. The caller gets the upstream's answer with its own ID restored, or null
 * when every upstream failed (the server then answers SERVFAIL).
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  timeoutMs: number;
}

interface Pending {
  upstream: Upstream;
  resolve: (response: Buffer | null) => void;
  timer: NodeJS.Timeout;
}

export class Forwarder {
  readonly #options: ForwarderOptions;
  readonly #pending = new Map<number, Pending>();
  #v4: Socket | null = null;
  #v6: Socket | null = null;
  #closed = false;
  failures = 0;
  timeouts = 0;

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  get upstreams(): readonly Upstream[] {
    return this.#options.upstreams;
  }

  /**
   * Resolves with the response for `query`, or null when no upstream answered in time. With
   * `viaTcp` (the client asked over TCP), a truncated UDP answer is asked again over TCP.
   */
  async forward(query: Buffer, viaTcp = false): Promise<Buffer | null> {
    for (const upstream of this.#options.upstreams) {
      if (this.#closed) return null;
      let response = await this.#ask(upstream, query);
      if (response !== null && viaTcp && ((response[2] as number) & 0x02) !== 0) {
        response = await this.#askTcp(upstream, query);
      }
      if (response !== null) {
        const rcode = (response[3] as number) & 0x0f;
        // SERVFAIL/REFUSED from one upstream: try the next one before giving up.
        if ((rcode === 2 || rcode === 5) && upstream !== this.#options.upstreams.at(-1)) continue;
        response[0] = query[0] as number;
        response[1] = query[1] as number;
        return response;
      }
    }
    this.failures += 1;
    return null;
  }

  #socket(upstream: Upstream): Socket {
    const v6 = isIPv6(upstream.host);
    const existing = v6 ? this.#v6 : this.#v4;
    if (existing !== null) return existing;
    const socket = createSocket(v6 ? 'udp6' : 'udp4');
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo.address, rinfo.port));
    socket.on('error', () => {
      // Send errors surface as timeouts for the query concerned; the socket stays usable.
    });
    socket.unref();
    if (v6) this.#v6 = socket;
    else this.#v4 = socket;
    return socket;
  }

  #ask(upstream: Upstream, query: Buffer): Promise<Buffer | null> {
    return new Promise((resolve) => {
      let id = 0;
      for (let tries = 0; tries < 64; tries++) {
        id = (Math.random() * 0x10000) | 0;
        if (!this.#pending.has(id)) break;
      }
      if (this.#pending.has(id)) {
        resolve(null);
        return;
      }
      const outgoing = Buffer.from(query);
      outgoing[0] = id >> 8;
      outgoing[1] = id & 0xff;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        this.timeouts += 1;
        resolve(null);
      }, this.#options.timeoutMs);
      this.#pending.set(id, { upstream, resolve, timer });
      this.#socket(upstream).send(outgoing, upstream.port, upstream.host, (error) => {
        if (error) this.#settle(id, null);
      });
    });
  }

  /** One query over a fresh TCP connection (RFC 7766 framing), or null on error or timeout. */
  #askTcp(upstream: Upstream, query: Buffer): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const socket = connect({ host: upstream.host, port: upstream.port });
      let buffered = Buffer.alloc(0);
      const finish = (response: Buffer | null) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(response);
      };
      const timer = setTimeout(() => {
        this.timeouts += 1;
        finish(null);
      }, this.#options.timeoutMs);
      socket.on('error', () => finish(null));
      socket.on('close', () => finish(null));
      socket.on('connect', () => {
        const prefix = Buffer.allocUnsafe(2);
        prefix.writeUInt16BE(query.length, 0);
        socket.write(Buffer.concat([prefix, query]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2) return;
        const length = buffered.readUInt16BE(0);
        if (buffered.length >= 2 + length) finish(Buffer.from(buffered.subarray(2, 2 + length)));
      });
    });
  }

  #onMessage(msg: Buffer, address: string, port: number): void {
    if (msg.length < 12) return;
    const id = ((msg[0] as number) << 8) | (msg[1] as number);
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    // Only the upstream we asked may answer (a spoofed reply from elsewhere is ignored).
    if (port !== pending.upstream.port || stripMapped(address) !== stripMapped(pending.upstream.host)) return;
    this.#settle(id, msg);
  }

  #settle(id: number, response: Buffer | null): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    pending.resolve(response);
  }

  close(): void {
    this.#closed = true;
    for (const id of [...this.#pending.keys()]) this.#settle(id, null);
    this.#v4?.close();
    this.#v6?.close();
    this.#v4 = null;
    this.#v6 = null;
  }
}

function stripMapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** Nameservers from a resolv.conf text, port 53; loopback stub resolvers are kept. */
export function parseResolvConf(text: string): Upstream[] {
  const out: Upstream[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    const host = match?.[1];
    if (host === undefined) continue;
    out.push({ host: host.replace(/%.*$/, ''), port: 53 });
  }
  return out;
}
