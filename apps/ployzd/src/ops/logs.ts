/**
 * The `logs` route: every instance of a service, on whatever machine, read in chunks after a
 * cursor (`readLogs` here, `logs_read` over RPC elsewhere — one reader interface), each line
 * named by instance and machine and merged by time. Following, each round reads every instance up
 * to the time the round began and sends only what is at or before it (`takeUpTo`), so the merged
 * order is final; the instance list is read again every round, so a deploy's new instances join
 * and removed ones leave.
 */
import type { LogCursor, LogsEnd, LogsEntry, LogsLine, LogsQuery, LogsReadResult } from '@ployz/protocol';
import { type InstanceRecord, isPloyzError, PloyzError, toErrorBody } from '@ployz/types';
import type { Clock } from '../workloads/clock.ts';
import { logTimeOf, mergeByTime, takeUpTo } from './log-lines.ts';

export interface LogReader {
  read(
    instance: InstanceRecord,
    request: { after: LogCursor | null; since: string | null; tail: number | null; limit: number },
  ): Promise<LogsReadResult>;
}

export interface LogsDeps {
  /** The instance records of the service (every state). */
  instances(): Promise<InstanceRecord[]>;
  reader: LogReader;
  emit(entry: LogsEntry): void;
  signal: AbortSignal;
  /** Its sleep rejects when the signal aborts (the client went away). */
  clock: Clock;
  pollMs: number;
}

const CHUNK = 2000;

interface Tracked {
  record: InstanceRecord;
  cursor: LogCursor | null;
  /** First read: from `since` / `tail` (an instance there at the start) or from its beginning (one that joined). */
  first: boolean;
  joined: boolean;
  /** When the first read began: a later read while the cursor is still null starts there. */
  readAt: string | null;
  buffer: LogsLine[];
  unreachable: boolean;
  gone: boolean;
  /** Listings in a row that did not have the record (one can miss a key rewritten meanwhile). */
  missing: number;
}

/** The RPC failures that mean the instance's machine is not there (MACHINE_UNREACHABLE). */
export function unreachableError(error: unknown, machine: string): PloyzError | null {
  if (!isPloyzError(error)) return null;
  if (!['RPC_NO_RESPONDERS', 'RPC_TIMEOUT', 'STORE_UNAVAILABLE'].includes(error.code)) return null;
  return new PloyzError('MACHINE_UNREACHABLE', `machine ${machine} does not answer: ${error.message}`, {
    cause: error,
    details: { machine },
  });
}

export async function streamLogs(q: LogsQuery, deps: LogsDeps): Promise<LogsEnd> {
  const tracked = new Map<string, Tracked>();
  const since = q.since === undefined ? null : logTimeOf(q.since);
  let sent = 0;
  const pick = (all: InstanceRecord[]) => all.filter((i) => q.instance === undefined || i.id === q.instance);

  const track = (record: InstanceRecord, joined: boolean) =>
    tracked.set(record.id, {
      record,
      cursor: null,
      first: true,
      joined,
      readAt: null,
      buffer: [],
      unreachable: false,
      gone: false,
      missing: 0,
    });
  for (const record of pick(await deps.instances())) track(record, false);
  if (q.instance !== undefined && tracked.size === 0) {
    throw new PloyzError(
      'NO_RUNNING_INSTANCE',
      `${q.namespace}/${q.service} has no instance ${q.instance}; see ployzctl ps -n ${q.namespace}`,
      { details: { namespace: q.namespace, service: q.service, instance: q.instance } },
    );
  }
  // A service scaled to zero (or whose instances are all gone) has nothing to read; following,
  // its next deploy's instances join.
  if (!q.follow && tracked.size === 0) {
    throw new PloyzError(
      'NO_RUNNING_INSTANCE',
      `${q.namespace}/${q.service} has no instance; see ployzctl ps -n ${q.namespace}`,
      { details: { namespace: q.namespace, service: q.service } },
    );
  }

  /** Reads one instance until its answer is complete; lines go to its buffer. */
  const drain = async (t: Tracked) => {
    for (;;) {
      if (t.first) t.readAt ??= logTimeOf(deps.clock.now().toISOString());
      const request = t.first
        ? t.joined
          ? { after: null, since: null, tail: null, limit: CHUNK }
          : { after: null, since, tail: q.tail ?? null, limit: CHUNK }
        : { after: t.cursor, since: t.cursor === null ? t.readAt : null, tail: null, limit: CHUNK };
      let chunk: LogsReadResult;
      try {
        chunk = await deps.reader.read(t.record, request);
      } catch (error) {
        const down = unreachableError(error, t.record.machine);
        if (down === null) throw error;
        if (!t.unreachable)
          deps.emit({
            type: 'unreachable',
            instance: t.record.id,
            machine: t.record.machine,
            error: toErrorBody(down),
          });
        t.unreachable = true;
        return;
      }
      t.unreachable = false;
      t.first = false;
      t.cursor = chunk.cursor;
      for (const line of chunk.lines)
        t.buffer.push({ type: 'line', instance: t.record.id, machine: t.record.machine, ...line });
      if (chunk.gone) t.gone = true;
      if (chunk.complete) return;
    }
  };

  const send = (lines: LogsLine[]) => {
    for (const line of lines) deps.emit(line);
    sent += lines.length;
  };
  const end = (reason: LogsEnd['reason']): LogsEnd => ({
    lines: sent,
    instances: [...tracked.keys()],
    unreachable: [...tracked.values()].filter((t) => t.unreachable).map((t) => t.record.id),
    reason,
  });

  if (!q.follow) {
    await Promise.all([...tracked.values()].map(drain));
    send(mergeByTime([...tracked.values()].map((t) => t.buffer)));
    return end('caught_up');
  }

  for (;;) {
    if (deps.signal.aborted) return end('client_closed');
    const watermark = logTimeOf(deps.clock.now().toISOString());
    // A record written before its container (a deploy's step: `starting`, no container id) has
    // nothing to read yet; read it once the record names its container, or it would read as gone.
    await Promise.all(
      [...tracked.values()].filter((t) => (!t.gone || t.first) && t.record.container_id !== null).map(drain),
    );
    const all = [...tracked.values()];
    const { ready, rest } = takeUpTo(
      all.map((t) => t.buffer),
      watermark,
    );
    send(ready);
    all.forEach((t, i) => {
      t.buffer = rest[i] ?? [];
    });
    await deps.clock.sleep(deps.pollMs, deps.signal).catch(() => {});
    if (deps.signal.aborted) return end('client_closed');
    // A deploy's new instances join; an instance whose record and container are gone (or whose
    // record went before it ever had a container) leaves.
    const now = pick(await deps.instances());
    const ids = new Set(now.map((i) => i.id));
    for (const record of now) {
      const t = tracked.get(record.id);
      if (t !== undefined) {
        t.record = record;
        t.missing = 0;
      } else {
        track(record, true);
        deps.emit({ type: 'instance', event: 'joined', instance: record.id, machine: record.machine });
      }
    }
    // Left only when two listings in a row lack the record: a store listing can miss a key that a
    // deploy rewrites while it is read (the instance would leave and join again).
    for (const [id, t] of tracked) {
      if (!ids.has(id)) t.missing += 1;
      if (t.missing >= 2 && (t.gone || t.record.container_id === null) && t.buffer.length === 0) {
        tracked.delete(id);
        deps.emit({ type: 'instance', event: 'left', instance: id, machine: t.record.machine });
      }
    }
  }
}
