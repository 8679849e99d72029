/**
 * Log lines as `ployzctl logs` merges them. Pure: Docker's log bytes in, timed lines out; a
 * cursor that says where a chunked reader stopped; the merge of several instances' lines by
 * time. Docker writes RFC 3339 times with up to nine fraction digits and trailing zeros cut, so
 * every time is first written with nine digits: then text order is time order.
 */
import type { LogChunkLine, LogCursor, LogStream } from '@ployz/protocol';

const TIME = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/;

/** `2026-12-02T10:00:00.5Z` → `2026-12-02T10:00:00.500000000Z`; null when it is not such a time. */
export function logTime(raw: string): string | null {
  const m = TIME.exec(raw);
  if (m === null) return null;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z`;
}

/** A nine-digit log time as Docker's `since` parameter (`<unix seconds>.<nanoseconds>`). */
export function dockerSince(at: string): string {
  const seconds = Math.floor(Date.parse(`${at.slice(0, 19)}Z`) / 1000);
  return `${seconds}.${at.slice(20, 29)}`;
}

/** Any RFC 3339 time (offset allowed) as a nine-digit UTC log time. */
export function logTimeOf(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new RangeError(`not a time: ${iso}`);
  const fraction = /\.(\d+)/.exec(iso)?.[1] ?? '';
  const whole = new Date(Math.floor(ms / 1000) * 1000).toISOString().slice(0, 19);
  return `${whole}.${fraction.slice(0, 9).padEnd(9, '0')}Z`;
}

/**
 * Docker's answer to a logs request with `timestamps` (one buffer, not followed): for a
 * container without a TTY, frames of `[stream, 0, 0, 0, size(4, BE)]` + payload; with one, raw
 * bytes (all stdout). Each line is `<time> <text>`; a line without a time is kept with the time
 * of the line before it (or dropped when it is the first).
 */
export function dockerLogLines(buf: Buffer, tty: boolean): LogChunkLine[] {
  const parts: { stream: LogStream; text: string }[] = [];
  if (tty) parts.push({ stream: 'stdout', text: buf.toString('utf8') });
  else {
    // Frames of one stream may split a line: join consecutive payloads of the same stream.
    const pending: Record<LogStream, string> = { stdout: '', stderr: '' };
    let at = 0;
    while (at + 8 <= buf.length) {
      const kind = buf.readUInt8(at);
      const size = buf.readUInt32BE(at + 4);
      const payload = buf.subarray(at + 8, at + 8 + size).toString('utf8');
      at += 8 + size;
      const stream: LogStream = kind === 2 ? 'stderr' : 'stdout';
      pending[stream] += payload;
      const nl = pending[stream].lastIndexOf('\n');
      if (nl >= 0) {
        parts.push({ stream, text: pending[stream].slice(0, nl + 1) });
        pending[stream] = pending[stream].slice(nl + 1);
      }
    }
    for (const stream of ['stdout', 'stderr'] as const)
      if (pending[stream] !== '') parts.push({ stream, text: pending[stream] });
  }
  const lines: LogChunkLine[] = [];
  for (const part of parts) {
    for (const raw of part.text.split('\n')) {
      if (raw === '') continue;
      const space = raw.indexOf(' ');
      const at = logTime(space < 0 ? raw : raw.slice(0, space));
      const text = (space < 0 ? '' : raw.slice(space + 1)).replace(/\r$/, '');
      if (at !== null) lines.push({ at, stream: part.stream, text });
      else {
        const before = lines.at(-1);
        if (before !== undefined) lines.push({ at: before.at, stream: part.stream, text: raw });
      }
    }
  }
  return stableSortByTime(lines);
}

function stableSortByTime<T extends { at: string }>(lines: T[]): T[] {
  return lines
    .map((line, i) => ({ line, i }))
    .sort((a, b) => (a.line.at < b.line.at ? -1 : a.line.at > b.line.at ? 1 : a.i - b.i))
    .map((x) => x.line);
}

/** The lines after `cursor`: later than its time, or at its time beyond the `seen` already taken. */
export function afterCursor<T extends { at: string }>(lines: readonly T[], cursor: LogCursor | null): T[] {
  if (cursor === null) return [...lines];
  let skip = cursor.seen;
  return lines.filter((line) => {
    if (line.at > cursor.at) return true;
    if (line.at < cursor.at) return false;
    if (skip > 0) {
      skip -= 1;
      return false;
    }
    return true;
  });
}

/** The cursor once `lines` (time-ordered, all after `cursor`) are taken too. */
export function advanceCursor(cursor: LogCursor | null, lines: readonly { at: string }[]): LogCursor | null {
  const last = lines.at(-1);
  if (last === undefined) return cursor;
  let seen = 0;
  for (let i = lines.length - 1; i >= 0 && lines[i]?.at === last.at; i--) seen += 1;
  if (cursor !== null && cursor.at === last.at) seen += cursor.seen;
  return { at: last.at, seen };
}

/**
 * Several time-ordered lists merged into one by time; at equal times the earlier list's line
 * comes first, and each list keeps its own order.
 */
export function mergeByTime<T extends { at: string }>(lists: readonly (readonly T[])[]): T[] {
  const heads = lists.map(() => 0);
  const out: T[] = [];
  for (;;) {
    let best = -1;
    for (let i = 0; i < lists.length; i++) {
      const line = lists[i]?.[heads[i] ?? 0];
      if (line === undefined) continue;
      const current = best < 0 ? undefined : lists[best]?.[heads[best] ?? 0];
      if (current === undefined || line.at < current.at) best = i;
    }
    if (best < 0) return out;
    const line = lists[best]?.[heads[best] ?? 0];
    if (line !== undefined) out.push(line);
    heads[best] = (heads[best] ?? 0) + 1;
  }
}

/**
 * Of lines buffered per instance (each time-ordered), the ones at or before `watermark`, merged by
 * time, and what stays buffered. Every reader has read up to the watermark, so no line at or
 * before it can still arrive: what is released is in its final order.
 */
export function takeUpTo<T extends { at: string }>(
  buffers: readonly (readonly T[])[],
  watermark: string,
): { ready: T[]; rest: T[][] } {
  const cut = buffers.map((b) => {
    const i = b.findIndex((line) => line.at > watermark);
    return i < 0 ? b.length : i;
  });
  return {
    ready: mergeByTime(buffers.map((b, i) => b.slice(0, cut[i]))),
    rest: buffers.map((b, i) => b.slice(cut[i])),
  };
}
