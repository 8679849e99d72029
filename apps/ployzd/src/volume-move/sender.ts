/**
 * The sending end of a volume-move pass (ADR 0021): reads the snapshot's identity (zfs guid; btrfs
 * uuid and tree sha256), connects to the target's transfer listener, writes the header with the
 * token the target issued, and only once the target answers `accepted` starts `zfs send [-i base]`
 * / `btrfs send [-p base]` into the connection. It then waits for the target's verdict and checks it
 * against what it sent (id, bytes, sha256). Progress (stage, bytes, rate) goes to a callback, never
 * to storage; an abort signal cuts the connection and the send (the target then destroys its copy).
 */
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import { PloyzError } from '@ployz/types';
import { parseVolumeName } from '../storage/names.ts';
import {
  encodeHeader,
  parseReply,
  REPLY_MAX_BYTES,
  type TransferHeader,
  type TransferReply,
  type TransferVerified,
} from './header.ts';
import { checkTransfer, type MoveStorage } from './move-storage.ts';
import { connectIn } from './netns-socket.ts';
import { startTool, type ToolProcess } from './tool-process.ts';

export type TransferStage = 'reading' | 'connecting' | 'sending' | 'verifying' | 'done';

export interface TransferProgress {
  stage: TransferStage;
  /** Stream bytes written so far. */
  bytes: number;
  /** Average since the send started, bytes per second (0 before it). */
  bytesPerSecond: number;
  elapsedMs: number;
}

export interface SendPass {
  storage: MoveStorage;
  /** `<ns>/<volume>` */
  volume: string;
  /** The move's id (only checked here; the target names its temporary copy with it). */
  moveId: string;
  snapshot: string;
  base: string | null;
  /** The token of the target's receive slot (volume_receive_prepare). */
  token: string;
  target: { host: string; port: number };
  /** The source's own overlay address to connect from (the slot is bound to it). */
  localAddress?: string;
  /** The network namespace to connect from (ployz-networking's, where wg0 is); null: this one. */
  netns?: string | null;
  onProgress?: (progress: TransferProgress) => void;
  /** Progress at most this often while sending (250 ms). */
  progressIntervalMs?: number;
  /** No answer, or no way to write, for this long fails the pass (30 s). */
  idleMs?: number;
  /** How long the target may take to verify after the stream ended (btrfs hashes the tree): 30 min. */
  verifyTimeoutMs?: number;
  signal?: AbortSignal;
}

const failed = (message: string, details: Record<string, unknown>, cause?: unknown) =>
  new PloyzError('VOLUME_TRANSFER_FAILED', message, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });

/** One pass; resolves with the target's verified result, checked against the source. */
export async function sendVolume(pass: SendPass): Promise<TransferVerified> {
  const name = parseVolumeName(pass.volume);
  checkTransfer(pass.volume, pass.moveId, pass.snapshot, pass.base);
  const details = { volume: name.full, snapshot: pass.snapshot, base: pass.base, target: pass.target };
  const started = Date.now();
  let sendStarted = 0;
  let bytes = 0;
  let lastProgress = 0;
  const interval = pass.progressIntervalMs ?? 250;
  const progress = (stage: TransferStage) => {
    const now = Date.now();
    lastProgress = now;
    const seconds = sendStarted === 0 ? 0 : (now - sendStarted) / 1000;
    pass.onProgress?.({
      stage,
      bytes,
      bytesPerSecond: seconds > 0 ? Math.round(bytes / seconds) : 0,
      elapsedMs: now - started,
    });
  };
  if (pass.signal?.aborted)
    throw failed('the pass was aborted before it started', { ...details, reason: 'aborted' });

  progress('reading');
  const source = await pass.storage.sourceStream(name, pass.snapshot, pass.base);
  const header: TransferHeader = {
    v: 1,
    token: pass.token,
    ns: name.namespace,
    volume: name.volume,
    driver: pass.storage.kind,
    snapshot: pass.snapshot,
    base: pass.base,
    guid: source.id,
    ...(source.sha256 === undefined ? {} : { sha256: source.sha256 }),
  };
  progress('connecting');

  let socket: Socket;
  try {
    socket = await connectIn(pass.netns ?? null, pass.target, pass.localAddress, pass.idleMs ?? 30_000);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw error instanceof PloyzError
      ? error
      : failed(
          `the connection to the target ${pass.target.host}:${pass.target.port} failed: ${(error as Error).message}`,
          { ...details, reason: code === 'ECONNREFUSED' ? 'unreachable' : 'connection lost' },
          error,
        );
  }

  return new Promise<TransferVerified>((resolve, reject) => {
    let settled = false;
    let tool: ToolProcess | undefined;
    let streamEnded = false;
    socket.setTimeout(pass.idleMs ?? 30_000);
    let verifyTimer: NodeJS.Timeout | undefined;

    const finish = (error: PloyzError | undefined, result?: TransferVerified) => {
      if (settled) return;
      settled = true;
      clearTimeout(verifyTimer);
      pass.signal?.removeEventListener('abort', onAbort);
      if (error) {
        tool?.kill();
        socket.destroy();
        reject(error);
        return;
      }
      socket.end();
      if (result) resolve(result);
    };
    const onAbort = () => finish(failed('the pass was aborted', { ...details, reason: 'aborted', bytes }));
    pass.signal?.addEventListener('abort', onAbort, { once: true });

    const startSending = () => {
      sendStarted = Date.now();
      progress('sending');
      tool = startTool(source.tool, source.args);
      const counter = new Transform({
        highWaterMark: 1024 * 1024,
        transform(chunk: Buffer, _encoding, callback) {
          bytes += chunk.length;
          if (Date.now() - lastProgress >= interval || bytes === chunk.length) progress('sending');
          callback(null, chunk);
        },
      });
      tool.stdout.pipe(counter).pipe(socket, { end: false });
      counter.once('end', () => {
        streamEnded = true;
      });
      tool.exited.then(
        () => {
          const endWhenFlushed = () => {
            if (settled) return;
            socket.end(); // half-close: the target reads to the end, then answers
            socket.setTimeout(0);
            progress('verifying');
            verifyTimer = setTimeout(
              () =>
                finish(
                  failed('the target did not answer after the stream ended', {
                    ...details,
                    reason: 'no verdict',
                    bytes,
                  }),
                ),
              pass.verifyTimeoutMs ?? 30 * 60_000,
            );
            verifyTimer.unref();
          };
          if (streamEnded) endWhenFlushed();
          else counter.once('end', endWhenFlushed);
        },
        (error: unknown) =>
          finish(
            error instanceof PloyzError && error.code === 'STORAGE_TOOL_MISSING'
              ? error
              : failed(
                  `${source.tool.command} send of ${name.full}@${pass.snapshot} failed: ${error instanceof Error ? error.message : String(error)}`,
                  { ...details, reason: 'send failed' },
                  error,
                ),
          ),
      );
    };

    const onReply = (reply: TransferReply) => {
      if (!reply.ok) {
        finish(PloyzError.fromBody(reply.error));
        return;
      }
      if (reply.stage === 'accepted') {
        if (tool === undefined) startSending();
        return;
      }
      const result = reply.result;
      if (!streamEnded || tool === undefined) {
        finish(
          failed('the target answered before the stream ended', { ...details, reason: 'early verdict' }),
        );
        return;
      }
      const mismatch =
        result.id !== source.id
          ? 'id'
          : result.bytes !== bytes
            ? 'bytes'
            : result.sha256 !== source.sha256
              ? 'sha256'
              : result.snapshot !== pass.snapshot
                ? 'snapshot'
                : undefined;
      if (mismatch !== undefined) {
        finish(
          new PloyzError(
            'VOLUME_TRANSFER_MISMATCH',
            `the target verified ${name.full}@${pass.snapshot} as something else than was sent (${mismatch})`,
            {
              details: {
                ...details,
                reason: mismatch,
                sent: { id: source.id, bytes, sha256: source.sha256 },
                received: result,
              },
            },
          ),
        );
        return;
      }
      progress('done');
      finish(undefined, result);
    };

    let lines = '';
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => {
      lines += text;
      for (let newline = lines.indexOf('\n'); newline >= 0; newline = lines.indexOf('\n')) {
        const line = lines.slice(0, newline);
        lines = lines.slice(newline + 1);
        const reply = parseReply(line);
        if (reply === null) {
          finish(
            failed('the target answered something that is not a transfer reply', {
              ...details,
              reason: 'bad reply',
            }),
          );
          return;
        }
        onReply(reply);
        if (settled) return;
      }
      if (lines.length > REPLY_MAX_BYTES) {
        finish(failed('the target answered an over-long line', { ...details, reason: 'bad reply' }));
      }
    });
    socket.write(encodeHeader(header));
    socket.on('timeout', () =>
      finish(
        failed(`the target sent nothing and took nothing for ${pass.idleMs ?? 30_000} ms`, {
          ...details,
          reason: 'idle',
          bytes,
        }),
      ),
    );
    socket.on('error', (error: NodeJS.ErrnoException) =>
      finish(
        failed(
          `the connection to the target ${pass.target.host}:${pass.target.port} failed: ${error.message}`,
          { ...details, reason: error.code === 'ECONNREFUSED' ? 'unreachable' : 'connection lost', bytes },
          error,
        ),
      ),
    );
    socket.once('close', () =>
      finish(
        failed('the target closed the connection without a verdict', { ...details, reason: 'closed', bytes }),
      ),
    );
  });
}
