/**
 * The first line of a volume-move data-plane connection (ADR 0021): which volume, snapshot and
 * guid the stream carries, and the one-use token the target issued over machine-command RPC.
 */
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
  return { ok: true, header: { v: 1, token, ns, volume, driver: o.driver, snapshot, base, guid } };
}

/** What the target bound a token to when it issued it. */
export interface IssuedSlot {
  readonly ns: string;
  readonly volume: string;
  readonly snapshot: string;
  readonly guid: string;
  readonly sourceAddress: string;
  readonly expiresAtMs: number;
}

/** Whether a connection's header matches the slot its token names; each token is used once. */
export function admit(
  slots: Map<string, IssuedSlot>,
  header: TransferHeader,
  peerAddress: string,
  nowMs: number,
): { ok: true; slot: IssuedSlot } | { ok: false; reason: string } {
  const slot = slots.get(header.token);
  if (!slot) return { ok: false, reason: 'unknown or used token' };
  slots.delete(header.token);
  if (nowMs > slot.expiresAtMs) return { ok: false, reason: 'token expired' };
  if (peerAddress !== slot.sourceAddress) return { ok: false, reason: 'peer is not the source machine' };
  if (
    header.ns !== slot.ns ||
    header.volume !== slot.volume ||
    header.snapshot !== slot.snapshot ||
    header.guid !== slot.guid
  )
    return { ok: false, reason: 'header does not match the issued slot' };
  return { ok: true, slot };
}
