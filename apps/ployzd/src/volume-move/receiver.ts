/**
 * The receiving end of volume moves (ADR 0021): one TCP listener on the machine's overlay address
 * (never a wildcard address), and one-use receive slots. `prepare` binds a 32-byte random token to
 * {volume, move, driver, snapshot, base, expected guid/uuid, source address} for one connection
 * within the token's lifetime. A connection sends one header line (header.ts); the receiver drops
 * it, counting and logging why, when the header is malformed or over 4 KiB, the token is unknown,
 * used or expired, the peer is not the source, or the header names anything but the slot. An
 * admitted connection is answered `accepted` and its body piped into `zfs recv` / `btrfs receive`
 * under a temporary name (move-storage.ts). The pass is verified — zfs: the received snapshot's guid
 * is the expected one; btrfs: its received uuid is, and the sha256 over its tree is the source's —
 * and answered on the connection; the slot's `done` settles with the same result. A broken,
 * tampered or stalled stream, or a mismatch, destroys the temporary copy: nothing stays.
 */
import { randomBytes } from 'node:crypto';
import { isIP, type Server, type Socket } from 'node:net';
import { Transform } from 'node:stream';
import { PloyzError, toErrorBody } from '@ployz/types';
import type { VolumeName } from '../storage/names.ts';
import {
  admit,
  encodeReply,
  HEADER_MAX_BYTES,
  type IssuedSlot,
  parseHeader,
  type TransferHeader,
  type TransferVerified,
} from './header.ts';
import { checkTransfer, type MoveStorage } from './move-storage.ts';
import { listenIn } from './netns-socket.ts';

/** Structured logging, as a pino Logger provides it. */
export interface TransferLog {
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

export interface ReceiverOptions {
  /** The address to listen on: the machine's wg0 address (127.0.0.1 in tests). Never 0.0.0.0 or ::. */
  address: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** The network namespace that holds `address` (ployz-networking's, `/proc/<pid>/ns/net`); null: this one. */
  netns?: string | null;
  storage: MoveStorage;
  log: TransferLog;
  /** How long a token is valid (60 s). */
  tokenTtlMs?: number;
  /** A connection with no bytes for this long is dropped; its pass fails (30 s). */
  idleMs?: number;
  /** Connections that have not sent their header yet, at most; more are dropped at once. */
  maxPending?: number;
  now?: () => number;
}

export interface PrepareReceive {
  /** `<ns>/<volume>` */
  volume: string;
  /** The move's id (its deploy id): names the temporary copy `<volume>_incoming_<moveId>`. */
  moveId: string;
  snapshot: string;
  /** The previous pass's snapshot for an incremental pass; null for the full one. */
  base: string | null;
  /** The snapshot's guid (zfs) or uuid (btrfs) as the source read it. */
  guid: string;
  /** The source machine's overlay address: the only peer the connection may come from. */
  sourceAddress: string;
}

export interface ReceiveSlot {
  /** 32 random bytes, base64url: given to the source (volume_send), used once. */
  token: string;
  expiresAtMs: number;
  /** The pass's result: verified, or a PloyzError (VOLUME_TRANSFER_*, STORAGE_*). */
  done: Promise<TransferVerified>;
}

export interface ReceiverStats {
  accepted: number;
  verified: number;
  failed: number;
  /** Dropped connections by reason. */
  refused: Record<string, number>;
}

interface Slot extends IssuedSlot {
  name: VolumeName;
  moveId: string;
  key: string;
  timer: NodeJS.Timeout;
  resolve: (result: TransferVerified) => void;
  reject: (error: PloyzError) => void;
}

const DEFAULT_TTL_MS = 60_000;
const DEFAULT_IDLE_MS = 30_000;
/** How long a refused or failed connection is drained for its answer to arrive before it is cut. */
const LINGER_MS = 2_000;
const WILDCARDS = new Set(['0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0']);

const peerOf = (socket: Socket) => (socket.remoteAddress ?? '').replace(/^::ffff:/, '');

function transferError(
  code: 'VOLUME_TRANSFER_FAILED' | 'VOLUME_TRANSFER_MISMATCH' | 'VOLUME_TRANSFER_REFUSED',
  message: string,
  details: Record<string, unknown>,
  cause?: unknown,
): PloyzError {
  return new PloyzError(code, message, { details, ...(cause === undefined ? {} : { cause }) });
}

/** A receive tool's own failure: a bad stream checksum is a mismatch, anything else a failed pass. */
function receiveFailure(error: unknown, details: Record<string, unknown>): PloyzError {
  if (error instanceof PloyzError && error.code.startsWith('VOLUME_TRANSFER_')) return error;
  if (error instanceof PloyzError && error.code === 'STORAGE_TOOL_MISSING') return error;
  const stderr = error instanceof PloyzError ? String(error.details?.stderr ?? error.message) : String(error);
  if (/checksum mismatch|crc32 mismatch/i.test(stderr)) {
    return transferError(
      'VOLUME_TRANSFER_MISMATCH',
      `the stream of ${String(details.volume)} failed its checksum on receipt (corrupted or tampered); the temporary copy was destroyed`,
      { ...details, reason: 'stream checksum', stderr },
      error,
    );
  }
  return transferError(
    'VOLUME_TRANSFER_FAILED',
    `receiving ${String(details.volume)} failed: ${stderr}; the temporary copy was destroyed`,
    { ...details, reason: 'receive failed', stderr },
    error,
  );
}

export class TransferReceiver {
  readonly #server: Server;
  readonly #options: ReceiverOptions;
  readonly #storage: MoveStorage;
  readonly #log: TransferLog;
  readonly #slots = new Map<string, Slot>();
  /** Temporary copies with a slot issued or a pass running: one at a time each. */
  readonly #busy = new Set<string>();
  readonly #sockets = new Set<Socket>();
  readonly #running = new Set<Promise<void>>();
  readonly #stats: ReceiverStats = { accepted: 0, verified: 0, failed: 0, refused: {} };
  #pending = 0;
  #closed = false;

  private constructor(server: Server, options: ReceiverOptions) {
    this.#server = server;
    this.#options = options;
    this.#storage = options.storage;
    this.#log = options.log;
    server.on('connection', (socket) => this.#onConnection(socket));
  }

  /** Listens on `options.address` only; a wildcard or non-IP address is refused. */
  static async listen(options: ReceiverOptions): Promise<TransferReceiver> {
    if (isIP(options.address) === 0 || WILDCARDS.has(options.address)) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `the volume transfer listener must bind one overlay address (the machine's wg0 address), not ${JSON.stringify(options.address)}`,
        { details: { address: options.address } },
      );
    }
    const server = await listenIn(options.netns ?? null, { host: options.address, port: options.port });
    return new TransferReceiver(server, options);
  }

  get address(): { host: string; port: number } {
    const a = this.#server.address();
    if (a === null || typeof a === 'string') throw new Error('transfer listener is not listening');
    return { host: a.address, port: a.port };
  }

  stats(): ReceiverStats {
    return { ...this.#stats, refused: { ...this.#stats.refused } };
  }

  #now(): number {
    return (this.#options.now ?? Date.now)();
  }

  /**
   * Issues a receive slot once the target can take the pass (move-storage.ts checkReceive:
   * STORAGE_EXISTS, NOT_FOUND); STORAGE_BUSY while another slot or pass of the same move is open.
   */
  async prepare(request: PrepareReceive): Promise<ReceiveSlot> {
    if (this.#closed) {
      throw transferError('VOLUME_TRANSFER_FAILED', 'the transfer receiver is closed', { reason: 'closed' });
    }
    const name = checkTransfer(request.volume, request.moveId, request.snapshot, request.base);
    if (request.guid.length === 0 || request.guid.length > 128 || isIP(request.sourceAddress) === 0) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        'a receive slot needs the source guid and the source address',
        {
          details: { guid: request.guid, sourceAddress: request.sourceAddress },
        },
      );
    }
    const key = `${name.full}\u0000${request.moveId}`;
    if (this.#busy.has(key)) {
      throw new PloyzError(
        'STORAGE_BUSY',
        `a pass of the move ${request.moveId} of ${name.full} is already open here; wait for it`,
        { details: { volume: name.full, moveId: request.moveId } },
      );
    }
    this.#busy.add(key);
    try {
      await this.#storage.checkReceive(name, request.moveId, request.base);
    } catch (error) {
      this.#busy.delete(key);
      throw error;
    }
    const token = randomBytes(32).toString('base64url');
    const ttl = this.#options.tokenTtlMs ?? DEFAULT_TTL_MS;
    const expiresAtMs = this.#now() + ttl;
    let resolve!: (result: TransferVerified) => void;
    let reject!: (error: PloyzError) => void;
    const done = new Promise<TransferVerified>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // awaited by the caller when it wants the result
    const timer = setTimeout(() => {
      if (this.#slots.get(token) !== slot) return;
      this.#slots.delete(token);
      this.#busy.delete(key);
      this.#stats.failed++;
      this.#log.warn({ volume: name.full, moveId: request.moveId }, 'volume transfer token expired unused');
      reject(
        transferError(
          'VOLUME_TRANSFER_FAILED',
          `the source did not connect within ${ttl} ms of the slot for ${name.full}; nothing was received`,
          { volume: name.full, moveId: request.moveId, reason: 'token expired unused' },
        ),
      );
    }, ttl + 1);
    timer.unref();
    const slot: Slot = {
      ns: name.namespace,
      volume: name.volume,
      driver: this.#storage.kind,
      snapshot: request.snapshot,
      base: request.base,
      guid: request.guid,
      sourceAddress: request.sourceAddress.replace(/^::ffff:/, ''),
      expiresAtMs,
      name,
      moveId: request.moveId,
      key,
      timer,
      resolve,
      reject,
    };
    this.#slots.set(token, slot);
    return { token, expiresAtMs, done };
  }

  #onConnection(socket: Socket): void {
    const peer = peerOf(socket);
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined); // each stage below reads errors off the socket's state
    const max = this.#options.maxPending ?? 8;
    if (this.#closed || this.#pending >= max) {
      this.#count(peer, this.#closed ? 'receiver closed' : 'too many connections');
      socket.destroy();
      return;
    }
    this.#pending++;
    socket.setTimeout(this.#options.idleMs ?? DEFAULT_IDLE_MS);
    let buffered = Buffer.alloc(0);
    let settled = false;
    const settle = () => {
      settled = true;
      this.#pending--;
      socket.off('readable', onReadable);
      socket.off('timeout', onTimeout);
      socket.off('end', onEnd);
    };
    const refuse = (reason: string, slot?: Slot) => {
      settle();
      this.#refuse(socket, peer, reason, slot);
    };
    const onTimeout = () => refuse('no header in time');
    const onEnd = () => refuse('closed before its header');
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk !== null && !settled; chunk = socket.read()) {
        buffered = Buffer.concat([buffered, chunk]);
        const newline = buffered.indexOf(10);
        if (newline < 0) {
          if (buffered.length >= HEADER_MAX_BYTES) refuse('header over 4 KiB');
          continue;
        }
        if (newline + 1 > HEADER_MAX_BYTES) {
          refuse('header over 4 KiB');
          return;
        }
        const parsed = parseHeader(buffered.subarray(0, newline).toString('utf8'));
        if (!parsed.ok) {
          refuse(`malformed header: ${parsed.reason}`);
          return;
        }
        const admitted = admit(this.#slots, parsed.header, peer, this.#now());
        if (!admitted.ok) {
          refuse(admitted.reason, admitted.slot);
          return;
        }
        settle();
        clearTimeout(admitted.slot.timer);
        const rest = buffered.subarray(newline + 1);
        if (rest.length > 0) socket.unshift(rest);
        this.#track(this.#receive(socket, peer, admitted.slot, parsed.header));
        return;
      }
    };
    socket.on('readable', onReadable);
    socket.on('timeout', onTimeout);
    socket.on('end', onEnd);
  }

  #count(peer: string, reason: string, slot?: Slot): void {
    this.#stats.refused[reason] = (this.#stats.refused[reason] ?? 0) + 1;
    this.#log.warn(
      { peer, reason, ...(slot ? { volume: slot.name.full, moveId: slot.moveId } : {}) },
      'volume transfer connection refused',
    );
  }

  #refuse(socket: Socket, peer: string, reason: string, slot?: Slot): void {
    this.#count(peer, reason, slot);
    const error = transferError(
      'VOLUME_TRANSFER_REFUSED',
      `the target refused the transfer connection: ${reason}`,
      { reason, peer, ...(slot ? { volume: slot.name.full } : {}) },
    );
    if (slot) {
      // The token was used by this connection: its slot is over.
      clearTimeout(slot.timer);
      this.#busy.delete(slot.key);
      slot.reject(error);
    }
    this.#answerAndClose(socket, encodeReply({ ok: false, error: toErrorBody(error) }));
  }

  /** Writes the last line, drains what the peer still sends for a moment (so it reads the line), cuts. */
  #answerAndClose(socket: Socket, line: string): void {
    if (socket.destroyed) return;
    socket.setTimeout(0);
    socket.end(line);
    socket.resume();
    const cut = setTimeout(() => socket.destroy(), LINGER_MS);
    cut.unref();
    socket.once('close', () => clearTimeout(cut));
    socket.once('end', () => socket.destroy());
  }

  #track(run: Promise<void>): void {
    this.#running.add(run);
    void run.finally(() => this.#running.delete(run));
  }

  async #receive(socket: Socket, peer: string, slot: Slot, header: TransferHeader): Promise<void> {
    const details = { volume: slot.name.full, moveId: slot.moveId, snapshot: slot.snapshot, base: slot.base };
    const idleMs = this.#options.idleMs ?? DEFAULT_IDLE_MS;
    this.#stats.accepted++;
    this.#log.info({ ...details, peer }, 'volume transfer accepted');
    let bytes = 0;
    let failure: PloyzError | undefined;
    const body = new Transform({
      highWaterMark: 1024 * 1024,
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    let markEnded!: () => void;
    const ended = new Promise<void>((resolve) => {
      markEnded = resolve;
    });
    let broken!: (error: PloyzError) => void;
    const interrupted = new Promise<never>((_resolve, reject) => {
      broken = reject;
    });
    interrupted.catch(() => undefined);
    const fail = (error: PloyzError) => {
      if (failure) return;
      failure = error;
      broken(error);
      body.destroy(error); // kills the receive tool (exec.ts), which then rejects
    };
    socket.on('timeout', () =>
      fail(
        transferError(
          'VOLUME_TRANSFER_FAILED',
          `no bytes of ${details.volume} for ${idleMs} ms; the pass was dropped`,
          {
            ...details,
            reason: 'idle',
          },
        ),
      ),
    );
    socket.on('error', (error) =>
      fail(
        transferError(
          'VOLUME_TRANSFER_FAILED',
          `the connection from the source broke (${error.message}); the pass was dropped`,
          { ...details, reason: 'connection lost' },
          error,
        ),
      ),
    );
    socket.once('end', () => {
      socket.setTimeout(0); // verifying may take longer than the idle limit; the sender waits
      markEnded();
    });
    socket.once('close', () => {
      if (!socket.readableEnded) {
        fail(
          transferError('VOLUME_TRANSFER_FAILED', 'the connection from the source closed mid-stream', {
            ...details,
            reason: 'closed',
          }),
        );
      }
    });
    try {
      socket.write(encodeReply({ ok: true, stage: 'accepted' }));
      socket.pipe(body);
      // Settles only once the tool has exited: a failure kills it first (tool-process.ts).
      await this.#storage.receive(slot.name, slot.moveId, slot.base, body);
      if (failure) throw failure;
      await Promise.race([ended, interrupted]);
      const got = await this.#storage.received(slot.name, slot.moveId, slot.snapshot);
      if (got.id !== slot.guid) {
        throw transferError(
          'VOLUME_TRANSFER_MISMATCH',
          got.id === null
            ? `the stream of ${details.volume} ended without a complete snapshot ${slot.snapshot}; the temporary copy was destroyed`
            : `received ${details.volume}@${slot.snapshot} has id ${got.id}, not the source's ${slot.guid}; the temporary copy was destroyed`,
          {
            ...details,
            reason: got.id === null ? 'incomplete' : 'guid',
            expected: slot.guid,
            received: got.id,
          },
        );
      }
      if (slot.driver === 'btrfs' && got.sha256 !== header.sha256) {
        throw transferError(
          'VOLUME_TRANSFER_MISMATCH',
          `the received tree of ${details.volume}@${slot.snapshot} is not the source's (sha256 ${got.sha256} vs ${header.sha256}); the temporary copy was destroyed`,
          { ...details, reason: 'sha256', expected: header.sha256, received: got.sha256 },
        );
      }
      const result: TransferVerified = {
        driver: slot.driver,
        volume: slot.name.full,
        snapshot: slot.snapshot,
        base: slot.base,
        id: got.id,
        bytes,
        ...(got.sha256 === undefined ? {} : { sha256: got.sha256 }),
      };
      this.#stats.verified++;
      this.#log.info({ ...details, bytes, id: got.id }, 'volume transfer verified');
      this.#busy.delete(slot.key);
      slot.resolve(result);
      if (!socket.destroyed) socket.end(encodeReply({ ok: true, stage: 'verified', result }));
    } catch (caught) {
      const error = failure ?? receiveFailure(caught, details);
      body.destroy();
      await this.#storage
        .discard(slot.name, slot.moveId)
        .catch((cleanup: unknown) =>
          this.#log.warn(
            { ...details, error: String(cleanup) },
            'volume transfer: the temporary copy could not be destroyed; remove it by hand',
          ),
        );
      this.#stats.failed++;
      this.#log.warn(
        { ...details, peer, code: error.code, reason: error.details?.reason, bytes },
        'volume transfer failed',
      );
      this.#busy.delete(slot.key);
      slot.reject(error);
      socket.unpipe(body);
      this.#answerAndClose(socket, encodeReply({ ok: false, error: toErrorBody(error) }));
    }
  }

  /** Stops listening; open slots fail, running passes are dropped (their temporary copies destroyed). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const [token, slot] of this.#slots) {
      this.#slots.delete(token);
      clearTimeout(slot.timer);
      this.#busy.delete(slot.key);
      slot.reject(
        transferError('VOLUME_TRANSFER_FAILED', 'the transfer receiver closed (ployzd stopping)', {
          volume: slot.name.full,
          reason: 'closed',
        }),
      );
    }
    for (const socket of this.#sockets) socket.destroy();
    await Promise.allSettled([...this.#running]);
    await closed;
  }
}
