/**
 * The first line of a volume-move data-plane connection (ADR 0021): which volume, snapshot and
 * guid the stream carries, and the one-use token the target issued over machine-command RPC.
 */
import type { ErrorBody } from '@ployz/types';

export const HEADER_MAX_BYTES = 4096;

export interface TransferHeader {
  readonly v: 1;
  readonly token: string;
  readonly ns: string;
  readonly volume: string;
  readonly driver: 'zfs' | 'btrfs';
  readonly snapshot: string;
  readonly base: string | null;
  /** zfs: the snapshot's guid; btrfs: the subvolume's uuid. */
  readonly guid: string;
  /** btrfs only: the sha256 over the snapshot's tree (tree-hash.ts), read by the source before sending. */
  readonly sha256?: string;
}

export type HeaderResult = { ok: true; header: TransferHeader } | { ok: false; reason: string };

export function encodeHeader(h: TransferHeader): Buffer {
  const line = Buffer.from(`${JSON.stringify(h)}\n`, 'utf8');
  if (line.length > HEADER_MAX_BYTES) throw new Error(`transfer header over ${HEADER_MAX_BYTES} bytes`);
  return line;
}

const str = (o: Record<string, unknown>, k: string): string | undefined =>
  typeof o[k] === 'string' && (o[k] as string).length > 0 ? (o[k] as string) : undefined;

/** Parses one header line (without its newline); anything malformed is refused with a reason. */
export function parseHeader(line: string): HeaderResult {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'header is not JSON' };
  }
  if (typeof raw !== 'object' || raw === null) return { ok: false, reason: 'header is not an object' };
  const o = raw as Record<string, unknown>;
  if (o.v !== 1) return { ok: false, reason: 'unknown header version' };
  if (o.driver !== 'zfs' && o.driver !== 'btrfs') return { ok: false, reason: 'unknown driver' };
  const token = str(o, 'token');
  const ns = str(o, 'ns');
  const volume = str(o, 'volume');
  const snapshot = str(o, 'snapshot');
  const guid = str(o, 'guid');
  if (!token || !ns || !volume || !snapshot || !guid) return { ok: false, reason: 'header field missing' };
  const base = o.base === null || o.base === undefined ? null : str(o, 'base');
  if (base === undefined) return { ok: false, reason: 'header base is not a string' };
  const header: TransferHeader = { v: 1, token, ns, volume, driver: o.driver, snapshot, base, guid };
  if (o.driver === 'zfs')
    return o.sha256 === undefined ? { ok: true, header } : { ok: false, reason: 'zfs header with sha256' };
  const sha256 = str(o, 'sha256');
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256))
    return { ok: false, reason: 'btrfs header without a sha256' };
  return { ok: true, header: { ...header, sha256 } };
}

/** What the target bound a token to when it issued it. */
export interface IssuedSlot {
  readonly ns: string;
  readonly volume: string;
  readonly driver: 'zfs' | 'btrfs';
  readonly snapshot: string;
  /** The snapshot an incremental pass is sent from (the previous pass's); null for a full send. */
  readonly base: string | null;
  readonly guid: string;
  readonly sourceAddress: string;
  readonly expiresAtMs: number;
}

/** Whether a connection's header matches the slot its token names; each token is used once. */
export function admit<S extends IssuedSlot>(
  slots: Map<string, S>,
  header: TransferHeader,
  peerAddress: string,
  nowMs: number,
): { ok: true; slot: S } | { ok: false; reason: string; slot?: S } {
  const slot = slots.get(header.token);
  if (!slot) return { ok: false, reason: 'unknown or used token' };
  slots.delete(header.token);
  if (nowMs > slot.expiresAtMs) return { ok: false, reason: 'token expired', slot };
  if (peerAddress !== slot.sourceAddress)
    return { ok: false, reason: 'peer is not the source machine', slot };
  if (
    header.ns !== slot.ns ||
    header.volume !== slot.volume ||
    header.driver !== slot.driver ||
    header.snapshot !== slot.snapshot ||
    header.base !== slot.base ||
    header.guid !== slot.guid
  )
    return { ok: false, reason: 'header does not match the issued slot', slot };
  return { ok: true, slot };
}

/** What a target verified a pass to be (the slot's result, and the sender's). */
export interface TransferVerified {
  readonly driver: 'zfs' | 'btrfs';
  readonly volume: string;
  readonly snapshot: string;
  readonly base: string | null;
  /** The received snapshot's guid (zfs) or received uuid (btrfs): equal to the source's. */
  readonly id: string;
  /** Body bytes received after the header. */
  readonly bytes: number;
  /** btrfs: the sha256 over the received tree, equal to the source's. */
  readonly sha256?: string;
}

/**
 * The target's answers on the same connection, one JSON line each: `accepted` once the header is
 * admitted (only then does the source start its send), then the pass's end, verified or an error.
 * A refusal is the only line of a refused connection.
 */
export type TransferReply =
  | { readonly ok: true; readonly stage: 'accepted' }
  | { readonly ok: true; readonly stage: 'verified'; readonly result: TransferVerified }
  | { readonly ok: false; readonly error: ErrorBody };

export const REPLY_MAX_BYTES = 65536;

export function encodeReply(reply: TransferReply): string {
  return `${JSON.stringify(reply)}\n`;
}

/** One reply line; anything else is null (the connection is then treated as broken). */
export function parseReply(line: string): TransferReply | null {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const o = raw as Record<string, unknown>;
  if (o.ok === false && typeof o.error === 'object' && o.error !== null) {
    const e = o.error as Record<string, unknown>;
    if (typeof e.code !== 'string' || typeof e.message !== 'string') return null;
    return { ok: false, error: e as unknown as ErrorBody };
  }
  if (o.ok !== true) return null;
  if (o.stage === 'accepted') return { ok: true, stage: 'accepted' };
  if (o.stage !== 'verified' || typeof o.result !== 'object' || o.result === null) return null;
  const r = o.result as Record<string, unknown>;
  if (typeof r.id !== 'string' || typeof r.bytes !== 'number' || typeof r.snapshot !== 'string') return null;
  return { ok: true, stage: 'verified', result: r as unknown as TransferVerified };
}
