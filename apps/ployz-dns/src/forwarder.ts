/**
 * Forwards queries outside the zone to upstream resolvers over UDP, one at a time in order,
 * each with a timeout. The caller gets the upstream's answer with its own ID restored, or null
 * when every upstream failed (the server then answers SERVFAIL).
 *
 * Spoofing resistance (RFC 5452): every attempt uses a fresh socket (so a kernel-chosen random
 * source port) and an ID from `crypto`; a reply is accepted only from the address and port
 * asked, with that ID and the query's own question (name ASCII-case-insensitively, type,
 * class). Anything else is dropped and counted in `rejected`; only accepted replies reach the
 * forward cache.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { foldAscii, HEADER_LENGTH } from './wire.ts';

export interface Upstream {
  host: string;
  port: number;
}

export interface ForwarderOptions {
  upstreams: Upstream[];
  timeoutMs: number;
  /**
   * Most upstream attempts in flight (each holds a socket); beyond that a query fails at once
   * (SERVFAIL) instead of opening more sockets. Default DEFAULT_MAX_IN_FLIGHT.
   */
  maxInFlight?: number;
}

export const DEFAULT_MAX_IN_FLIGHT = 1024;

export class Forwarder {
  readonly #options: ForwarderOptions;
  /** Cancels each attempt in flight (close() settles them with null). */
  readonly #inFlight = new Set<() => void>();
  #closed = false;
  failures = 0;
  timeouts = 0;
  /** Replies dropped: wrong ID, question, source address or port, or not a response. */
  rejected = 0;
  /** Queries failed at once because maxInFlight attempts were already waiting. */
  overloaded = 0;

  constructor(options: ForwarderOptions) {
    this.#options = options;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  get upstreams(): readonly Upstream[] {
    return this.#options.upstreams;
  }

  /**
   * Resolves with the response for `query` (whose question ends at `questionEnd`), or null when
   * no upstream answered in time. With `viaTcp` (the client asked over TCP), a truncated UDP
   * answer is asked again over TCP.
   */
  async forward(query: Buffer, questionEnd: number, viaTcp = false): Promise<Buffer | null> {
    if (this.#inFlight.size >= (this.#options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT)) {
      this.overloaded += 1;
      this.failures += 1;
      return null;
    }
    for (const upstream of this.#options.upstreams) {
      if (this.#closed) return null;
      let response = await this.#ask(upstream, query, questionEnd);
      if (response !== null && viaTcp && ((response[2] as number) & 0x02) !== 0) {
        response = await this.#askTcp(upstream, query, questionEnd);
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

  /** One UDP attempt from a socket of its own (random source port), with a crypto-random ID. */
  #ask(upstream: Upstream, query: Buffer, questionEnd: number): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const id = randomInt(0x10000);
      const outgoing = withId(query, id);
      const socket = createSocket({ type: isIPv6(upstream.host) ? 'udp6' : 'udp4', lookup: literalLookup });
      const finish = (response: Buffer | null) => {
        if (!this.#inFlight.delete(cancel)) return;
        clearTimeout(timer);
        socket.close();
        resolve(response);
      };
      const cancel = () => finish(null);
      this.#inFlight.add(cancel);
      const timer = setTimeout(() => {
        this.timeouts += 1;
        finish(null);
      }, this.#options.timeoutMs);
      socket.on('message', (msg, rinfo) => {
        if (
          rinfo.port === upstream.port &&
          sameHost(rinfo.address, upstream.host) &&
          isReplyTo(msg, outgoing, questionEnd)
        ) {
          finish(msg);
        } else {
          this.rejected += 1;
        }
      });
      socket.on('error', cancel);
      socket.send(outgoing, upstream.port, upstream.host, (error) => {
        if (error) cancel();
      });
    });
  }

  /** One query over a fresh TCP connection (RFC 7766 framing), or null on error or timeout. */
  #askTcp(upstream: Upstream, query: Buffer, questionEnd: number): Promise<Buffer | null> {
    return new Promise((resolve) => {
      const outgoing = withId(query, randomInt(0x10000));
      const socket = connect({ host: upstream.host, port: upstream.port });
      let buffered = Buffer.alloc(0);
      const finish = (response: Buffer | null) => {
        if (!this.#inFlight.delete(cancel)) return;
        clearTimeout(timer);
        socket.destroy();
        resolve(response);
      };
      const cancel = () => finish(null);
      this.#inFlight.add(cancel);
      const timer = setTimeout(() => {
        this.timeouts += 1;
        finish(null);
      }, this.#options.timeoutMs);
      socket.on('error', cancel);
      socket.on('close', cancel);
      socket.on('connect', () => {
        const prefix = Buffer.allocUnsafe(2);
        prefix.writeUInt16BE(outgoing.length, 0);
        socket.write(Buffer.concat([prefix, outgoing]));
      });
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (buffered.length < 2) return;
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) return;
        const reply = Buffer.from(buffered.subarray(2, 2 + length));
        if (isReplyTo(reply, outgoing, questionEnd)) {
          finish(reply);
        } else {
          this.rejected += 1;
          cancel();
        }
      });
    });
  }

  close(): void {
    this.#closed = true;
    for (const cancel of [...this.#inFlight]) cancel();
  }
}

function withId(query: Buffer, id: number): Buffer {
  const outgoing = Buffer.from(query);
  outgoing[0] = id >> 8;
  outgoing[1] = id & 0xff;
  return outgoing;
}

/**
 * True when `reply` answers `query`: a response with the same ID and exactly one question equal
 * to the query's (name compared ASCII-case-insensitively, type and class byte for byte).
 */
export function isReplyTo(reply: Buffer, query: Buffer, questionEnd: number): boolean {
  if (reply.length < questionEnd || ((reply[2] as number) & 0x80) === 0) return false;
  if (reply[0] !== query[0] || reply[1] !== query[1] || reply[4] !== 0 || reply[5] !== 1) return false;
  for (let i = HEADER_LENGTH; i < questionEnd; i++) {
    const a = reply[i] as number;
    const b = query[i] as number;
    if (a !== b && foldAscii(a) !== foldAscii(b)) return false;
  }
  return true;
}

function sameHost(address: string, host: string): boolean {
  return stripMapped(address) === stripMapped(host);
}

/** A dgram `lookup` for IP literals: answers synchronously with the address itself. */
export function literalLookup(
  hostname: string,
  _options: unknown,
  callback: (error: Error | null, address: string, family: number) => void,
): void {
  callback(null, hostname, hostname.includes(':') ? 6 : 4);
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
