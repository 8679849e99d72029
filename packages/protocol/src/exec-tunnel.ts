/**
 * Tunnels: local API requests upgraded to a two-way byte stream (`ployzctl exec`), since stdin,
 * stdout, stderr, a terminal resize and the exit code do not fit one JSON answer. The input
 * travels in the `x-ployz-input` header (URI-encoded JSON, validated against the tunnel's schema
 * like any route's); an error before the upgrade is an ordinary `{ error }` answer; after the
 * `101`, both sides send frames.
 *
 * Frame: 1 byte kind, 4 bytes big-endian length, payload. Client → daemon: `stdin` bytes, `eof`
 * (stdin closed), `resize` (`{cols,rows}` JSON). Daemon → client: `stdout`, `stderr`, then one
 * `exit` (`{exit_code}` JSON) or `error` (an error body) as the last frame.
 */
import { z } from 'zod';
import { ExecRequest } from './ops-commands.ts';

export const FRAME = { stdin: 0, stdout: 1, stderr: 2, exit: 3, error: 4, eof: 5, resize: 6 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];

export interface Frame {
  kind: FrameKind;
  payload: Buffer;
}

/** Largest payload a frame may carry (a longer write is split). */
export const MAX_FRAME = 1 << 20;
const KINDS = new Set<number>(Object.values(FRAME));

export function encodeFrame(kind: FrameKind, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  if (body.length > MAX_FRAME) throw new RangeError(`a frame carries at most ${MAX_FRAME} bytes`);
  const head = Buffer.alloc(5);
  head.writeUInt8(kind, 0);
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Frames for `data` of one kind, split at MAX_FRAME. */
export function encodeFrames(kind: FrameKind, data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += MAX_FRAME)
    out.push(encodeFrame(kind, data.subarray(at, at + MAX_FRAME)));
  return out;
}

/** Reassembles frames from chunks cut anywhere. Throws on an unknown kind or an oversized length. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const frames: Frame[] = [];
    while (this.#buf.length >= 5) {
      const kind = this.#buf.readUInt8(0);
      const length = this.#buf.readUInt32BE(1);
      if (!KINDS.has(kind)) throw new Error(`unknown frame kind ${kind}`);
      if (length > MAX_FRAME) throw new Error(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
      if (this.#buf.length < 5 + length) break;
      frames.push({ kind: kind as FrameKind, payload: this.#buf.subarray(5, 5 + length) });
      this.#buf = this.#buf.subarray(5 + length);
    }
    return frames;
  }

  /** Bytes of an unfinished frame. */
  get pending(): number {
    return this.#buf.length;
  }
}

export const TtyResize = z.strictObject({
  cols: z.number().int().min(1).max(10_000),
  rows: z.number().int().min(1).max(10_000),
});
export const ExecExit = z.strictObject({ exit_code: z.number().int() });

export interface TunnelSpec {
  path: `/v1/${string}`;
  input: z.ZodType;
  description: string;
}

export const TUNNEL_INPUT_HEADER = 'x-ployz-input';
export const TUNNEL_PROTOCOL = 'ployz-frames';

export const tunnels = {
  exec: {
    path: '/v1/exec',
    input: ExecRequest,
    description: 'run a command in one instance; stdin, stdout, stderr and the exit code as frames',
  },
} as const satisfies Record<string, TunnelSpec>;
export type Tunnels = typeof tunnels;
export type TunnelName = keyof Tunnels & string;
