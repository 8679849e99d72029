/**
 * The chunked transfer-coding decoder of the lean upstream client (RFC 9112 §7.1): chunk sizes
 * (with extensions ignored), chunk data, the CRLF after each chunk, and trailer fields, which are
 * dropped (node:http cannot forward undeclared trailers). Input may be split anywhere, down to one
 * byte per read; data is handed on as views of the input, never copied.
 */

const CRLF = 0x0a0d;
const CRLF_BYTES = Buffer.from('\r\n', 'latin1');
/** A chunk-size line (with its extensions) longer than this is refused. */
const MAX_SIZE_LINE = 1024;
/** Trailer fields longer than this (all together) are refused. */
const MAX_TRAILER_BYTES = 64 * 1024;

enum Chunk {
  Size = 0,
  Data = 1,
  DataEnd = 2,
  Trailers = 3,
}

/** Where the decoded body goes. */
export interface ChunkedSink {
  /** Chunk data: a view of the input, valid during this call only. */
  data(part: Buffer): void;
  /** The body ended (last chunk and trailers read); `extra` says bytes followed it. */
  end(extra: boolean): void;
  /** The framing is broken: the body cannot be read on. */
  fail(message: string): void;
  /** False once the exchange is over (e.g. aborted from `data`): decoding stops. */
  live(): boolean;
}

/** The decoding state of one chunked body; `reset()` before each. */
export class ChunkedDecoder {
  #state: Chunk = Chunk.Size;
  #remaining = 0;
  /** The start of a size line, CRLF or trailer line that the next input completes. */
  #held: Buffer | undefined;

  reset(): void {
    this.#state = Chunk.Size;
    this.#remaining = 0;
    this.#held = undefined;
  }

  /** Decodes `input` into `sink` until it is used up, the body ended, or the sink failed or left. */
  decode(input: Buffer, sink: ChunkedSink): void {
    let buf = input;
    if (this.#held !== undefined) {
      buf = Buffer.concat([this.#held, buf]);
      this.#held = undefined;
    }
    let pos = 0;
    while (pos < buf.length && sink.live()) {
      switch (this.#state) {
        case Chunk.Size: {
          const eol = buf.indexOf(CRLF_BYTES, pos);
          if (eol === -1) {
            if (buf.length - pos > MAX_SIZE_LINE) {
              sink.fail('chunk size line too long');
              return;
            }
            this.#held = Buffer.from(buf.subarray(pos));
            return;
          }
          let size = 0;
          let digits = 0;
          let i = pos;
          for (; i < eol; i++) {
            const c = buf[i] as number;
            const d =
              c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
            if (d === -1) break;
            size = size * 16 + d;
            digits += 1;
          }
          const stop = buf[i];
          if (digits === 0 || digits > 12 || (i < eol && stop !== 59 /* ; */ && stop !== 32 && stop !== 9)) {
            sink.fail('upstream sent a malformed chunk size');
            return;
          }
          pos = eol + 2;
          if (size === 0) {
            this.#state = Chunk.Trailers;
          } else {
            this.#remaining = size;
            this.#state = Chunk.Data;
          }
          break;
        }
        case Chunk.Data: {
          const take = Math.min(this.#remaining, buf.length - pos);
          const part = buf.subarray(pos, pos + take);
          pos += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#state = Chunk.DataEnd;
          sink.data(part);
          break;
        }
        case Chunk.DataEnd: {
          if (buf.length - pos < 2) {
            this.#held = Buffer.from(buf.subarray(pos));
            return;
          }
          if (buf.readUInt16LE(pos) !== CRLF) {
            sink.fail('upstream chunk not followed by CRLF');
            return;
          }
          pos += 2;
          this.#state = Chunk.Size;
          break;
        }
        case Chunk.Trailers: {
          // Trailer fields are skipped; an empty line ends the message.
          const eol = buf.indexOf(CRLF_BYTES, pos);
          if (eol === -1) {
            if (buf.length - pos > MAX_TRAILER_BYTES) {
              sink.fail('upstream trailers too large');
              return;
            }
            this.#held = Buffer.from(buf.subarray(pos));
            return;
          }
          const empty = eol === pos;
          pos = eol + 2;
          if (empty) {
            this.#held = undefined;
            sink.end(pos < buf.length);
            return;
          }
          break;
        }
      }
    }
  }
}
