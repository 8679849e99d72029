/**
 * UDP and TCP listeners. Each packet: parse header + question, look the precomputed answer up,
 * copy it behind the caller's header and question. Names outside the zone go to the forwarder.
 */

import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, type Server, type Socket as TcpSocket } from 'node:net';
import { DNS_TCP_MAX_PER_SOURCE, DNS_TCP_MESSAGE_TIMEOUT_MS } from '@ployz/protocol';
import { type AnswerTable, emptyAnswers } from './answers.ts';
import type { ForwardCache } from './forward-cache.ts';
import { type Forwarder, literalLookup } from './forwarder.ts';
import { DnsMetrics } from './metrics.ts';
import { respond } from './respond.ts';
import { buildErrorResponse, type ParsedQuery, RCODE_SERVFAIL, udpLimit } from './wire.ts';

export interface ListenAddress {
  host: string;
  port: number;
}

export interface DnsServerOptions {
  listen: ListenAddress[];
  zone: string;
  forwarder: Forwarder;
  /** Upstream answers kept for names outside the zone (none: every such query is forwarded). */
  cache?: ForwardCache;
  /** Close idle TCP connections after this long. */
  tcpIdleMs?: number;
  /**
   * A TCP message must arrive whole within this long of its first byte (length prefix included),
   * else the connection is closed: a client dripping one byte at a time cannot hold a slot.
   */
  tcpMessageMs?: number;
  /** Most TCP connections open at once from one source address; more are closed on accept. */
  tcpMaxPerSource?: number;
  /**
   * Bind with SO_REUSEPORT so several worker processes share each address (the kernel spreads
   * queries by source address and port). Ports must then be explicit, not 0.
   */
  reusePort?: boolean;
}

const MAX_TCP_CONNECTIONS = 512;
/** The env contract's defaults (@ployz/protocol components.ts), for callers that give none. */
export const DEFAULT_TCP_MESSAGE_MS = DNS_TCP_MESSAGE_TIMEOUT_MS;
export const DEFAULT_TCP_MAX_PER_SOURCE = DNS_TCP_MAX_PER_SOURCE;

export class DnsServer {
  readonly metrics = new DnsMetrics();
  readonly #options: DnsServerOptions;
  readonly #udp: Socket[] = [];
  readonly #tcp: Server[] = [];
  readonly #connections = new Set<TcpSocket>();
  /** Open TCP connections per source address. */
  readonly #perSource = new Map<string, number>();
  #table: AnswerTable;
  #ready = false;
  #updatedAt = 0;

  constructor(options: DnsServerOptions) {
    this.#options = options;
    this.#table = emptyAnswers(options.zone);
  }

  /** Swaps in a new compiled view; queries in flight finish against the old one. */
  setAnswers(table: AnswerTable): void {
    this.#table = table;
    this.#ready = true;
    this.#updatedAt = Date.now();
  }

  get answers(): AnswerTable {
    return this.#table;
  }

  get ready(): boolean {
    return this.#ready;
  }

  get updatedAt(): number {
    return this.#updatedAt;
  }

  /** Bound addresses (ports resolved when 0 was asked for), UDP and TCP share each port. */
  addresses(): ListenAddress[] {
    return this.#udp.map((socket) => {
      const address = socket.address();
      return { host: address.address, port: address.port };
    });
  }

  async start(): Promise<void> {
    for (const address of this.#options.listen) {
      // Port 0 asks for any port: UDP picks one, then TCP must get the same number. An ephemeral
      // port can be in use by an outgoing TCP connection, so try again with a fresh pick.
      const attempts = address.port === 0 ? 20 : 1;
      for (let attempt = 1; ; attempt += 1) {
        const udp = await this.#bindUdp(address);
        try {
          this.#tcp.push(await this.#listenTcp(address.host, udp.address().port));
          this.#udp.push(udp);
          break;
        } catch (error) {
          udp.close();
          if (attempt >= attempts || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
        }
      }
    }
  }

  async #bindUdp(address: { host: string; port: number }): Promise<Socket> {
    const udp = createSocket({
      type: address.host.includes(':') ? 'udp6' : 'udp4',
      // Replies go to the IP literal the query came from: skip dns.lookup and its extra tick.
      lookup: literalLookup,
      reusePort: this.#options.reusePort ?? false,
    });
    udp.on('message', (msg, rinfo) => this.#onUdp(udp, msg, rinfo.address, rinfo.port));
    udp.on('error', () => {
      this.metrics.socketErrors += 1;
    });
    // With a synchronous lookup, 'listening' can fire inside bind(): listen for it first.
    const listening = once(udp, 'listening');
    // exclusive: in a cluster worker, bind our own socket instead of sharing the primary's.
    udp.bind({ port: address.port, address: address.host, exclusive: true });
    await listening;
    return udp;
  }

  async #listenTcp(host: string, port: number): Promise<Server> {
    const tcp = createServer({ noDelay: true }, (socket) => this.#onTcp(socket));
    tcp.maxConnections = MAX_TCP_CONNECTIONS;
    tcp.listen({ port, host, exclusive: true, reusePort: this.#options.reusePort ?? false });
    await once(tcp, 'listening');
    return tcp;
  }

  async close(): Promise<void> {
    for (const udp of this.#udp) udp.close();
    const closing = this.#tcp.map((tcp) => new Promise<void>((resolve) => tcp.close(() => resolve())));
    for (const connection of this.#connections) connection.destroy();
    await Promise.all(closing);
    this.#udp.length = 0;
    this.#tcp.length = 0;
  }

  #onUdp(socket: Socket, msg: Buffer, address: string, port: number): void {
    const response = this.#answer(msg, address, true);
    if (response === null) return;
    if (response instanceof Promise) {
      void response.then((forwarded) => {
        if (forwarded !== null) socket.send(forwarded, port, address);
      });
      return;
    }
    socket.send(response, port, address);
  }

  /** The answer for one query: bytes, a pending forward, or null (drop). */
  #answer(msg: Buffer, sourceAddress: string, udp: boolean): Buffer | Promise<Buffer | null> | null {
    const metrics = this.metrics;
    metrics.queries += 1;
    const sourceIp = sourceAddress.startsWith('::ffff:') ? sourceAddress.slice(7) : sourceAddress;
    const outcome = respond(this.#table, this.#ready, msg, sourceIp, udp);
    switch (outcome.kind) {
      case 'answer':
        metrics.answered += 1;
        if (outcome.nxdomain) metrics.nxdomain += 1;
        return outcome.response;
      case 'forward': {
        const limit = udp ? udpLimit(outcome.query.ednsSize) : 0;
        const cached = this.#options.cache?.get(msg, outcome.query, limit) ?? null;
        if (cached !== null) {
          metrics.cached += 1;
          return cached;
        }
        return this.#forward(msg, outcome.query, udp);
      }
      case 'error':
        if (outcome.internal) metrics.internalErrors += 1;
        if (outcome.rcode === RCODE_SERVFAIL) metrics.servfail += 1;
        else metrics.malformed += 1;
        return outcome.response;
      case 'drop':
        metrics.dropped += 1;
        return null;
      default: {
        const never: never = outcome;
        return never;
      }
    }
  }

  async #forward(msg: Buffer, parsed: ParsedQuery, udp: boolean): Promise<Buffer> {
    this.metrics.forwarded += 1;
    const response = await this.#options.forwarder.forward(msg, parsed.questionEnd, !udp);
    if (response !== null) {
      this.#options.cache?.put(msg, parsed, response);
      return response;
    }
    this.metrics.servfail += 1;
    return buildErrorResponse(msg, RCODE_SERVFAIL, parsed.questionEnd, parsed.ednsSize);
  }

  #onTcp(socket: TcpSocket): void {
    const options = this.#options;
    const sourceAddress = socket.remoteAddress ?? '';
    const open = this.#perSource.get(sourceAddress) ?? 0;
    if (open >= (options.tcpMaxPerSource ?? DEFAULT_TCP_MAX_PER_SOURCE)) {
      this.metrics.tcpRefused += 1;
      socket.destroy();
      return;
    }
    this.#perSource.set(sourceAddress, open + 1);
    this.#connections.add(socket);
    socket.setTimeout(options.tcpIdleMs ?? 10_000, () => socket.destroy());
    // Armed while a message is partly read (set when its first byte is buffered, not per chunk).
    const messageMs = options.tcpMessageMs ?? DEFAULT_TCP_MESSAGE_MS;
    let messageTimer: NodeJS.Timeout | null = null;
    const onSlowMessage = () => {
      this.metrics.tcpSlow += 1;
      socket.destroy();
    };
    socket.on('close', () => {
      if (messageTimer !== null) clearTimeout(messageTimer);
      this.#connections.delete(socket);
      const left = (this.#perSource.get(sourceAddress) ?? 1) - 1;
      if (left === 0) this.#perSource.delete(sourceAddress);
      else this.#perSource.set(sourceAddress, left);
    });
    socket.on('error', () => socket.destroy());
    let buffered: Buffer = Buffer.alloc(0);
    /** Answers every whole message buffered, unless the socket stops draining (then waits). */
    const pump = () => {
      let answered = false;
      while (buffered.length >= 2 && !socket.isPaused()) {
        const length = buffered.readUInt16BE(0);
        if (buffered.length < 2 + length) break;
        const msg = Buffer.from(buffered.subarray(2, 2 + length));
        buffered = buffered.subarray(2 + length);
        answered = true;
        const response = this.#answer(msg, sourceAddress, false);
        if (response === null) continue;
        if (response instanceof Promise) {
          void response.then((forwarded) => {
            if (forwarded !== null && !socket.destroyed) send(forwarded);
          });
        } else {
          send(response);
        }
      }
      if (buffered.length === 0 || socket.isPaused()) {
        // Nothing partial, or we stopped reading (waiting on drain is our choice, not the client's).
        if (messageTimer !== null) clearTimeout(messageTimer);
        messageTimer = null;
      } else if (messageTimer === null || answered) {
        // A new message started: its own deadline.
        if (messageTimer !== null) clearTimeout(messageTimer);
        messageTimer = setTimeout(onSlowMessage, messageMs);
      }
    };
    /** Backpressure: a client that does not read its answers is not read from either. */
    const send = (response: Buffer) => {
      if (!writeFramed(socket, response) && !socket.isPaused()) {
        socket.pause();
        socket.once('drain', () => {
          socket.resume();
          pump();
        });
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      pump();
    });
  }
}

/** Writes one length-prefixed message; false when the socket's buffer is full (wait for drain). */
function writeFramed(socket: TcpSocket, response: Buffer): boolean {
  const prefix = Buffer.allocUnsafe(2);
  prefix.writeUInt16BE(response.length, 0);
  return socket.write(Buffer.concat([prefix, response]));
}
