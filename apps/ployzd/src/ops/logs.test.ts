import type { LogChunkLine, LogsEntry } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { instanceRecord } from '../../test/fakes/sample-records.ts';
import { advanceCursor, afterCursor } from './log-lines.ts';
import { type LogReader, streamLogs } from './logs.ts';

const t = (s: number) => `2026-12-02T10:00:${String(s).padStart(2, '0')}.000000000Z`;

const record = (id: string, machine: string) => instanceRecord(id, { machine });

/** Instances' log lines by id; a machine in `down` fails as RPC_NO_RESPONDERS. */
function reader(logs: Map<string, LogChunkLine[]>, down: Set<string>, gone: Set<string>): LogReader {
  return {
    async read(i, req) {
      if (down.has(i.machine)) throw new PloyzError('RPC_NO_RESPONDERS', `no ${i.machine}`);
      let lines = logs.get(i.id) ?? [];
      if (req.after === null && req.since !== null) lines = lines.filter((l) => l.at >= (req.since ?? ''));
      if (req.after === null && req.tail !== null) lines = req.tail === 0 ? [] : lines.slice(-req.tail);
      const fresh = afterCursor(lines, req.after);
      const chunk = fresh.slice(0, req.limit);
      return {
        lines: chunk,
        cursor: advanceCursor(req.after, chunk),
        complete: chunk.length === fresh.length,
        gone: gone.has(i.id),
      };
    },
  };
}

const line = (s: number, text: string): LogChunkLine => ({ at: t(s), stream: 'stdout', text });

/** What a follower printed, one short string per event: `a:text`, `a joined`, `a left`. */
const summary = (out: readonly LogsEntry[]): string[] =>
  out.map((e) =>
    e.type === 'line'
      ? `${e.instance}:${e.text}`
      : e.type === 'instance'
        ? `${e.instance} ${e.event}`
        : e.type,
  );

describe('streamLogs', () => {
  it('merges every instance by time, each line named by instance and machine; tail is per instance', async () => {
    const logs = new Map([
      ['a', [line(1, 'a1'), line(3, 'a3'), line(5, 'a5')]],
      ['b', [line(2, 'b2'), line(4, 'b4')]],
    ]);
    const out: LogsEntry[] = [];
    const end = await streamLogs(
      { namespace: 'shop', service: 'web', follow: false, tail: 2 },
      {
        instances: async () => [record('a', 'm1'), record('b', 'm2')],
        reader: reader(logs, new Set(), new Set()),
        emit: (e) => out.push(e),
        signal: new AbortController().signal,
        clock: { now: () => new Date(), sleep: async () => {} },
        pollMs: 0,
      },
    );
    expect(out.map((e) => (e.type === 'line' ? `${e.instance}@${e.machine}:${e.text}` : e.type))).toEqual([
      'b@m2:b2',
      'a@m1:a3',
      'b@m2:b4',
      'a@m1:a5',
    ]);
    expect(end).toMatchObject({ lines: 4, reason: 'caught_up', unreachable: [] });
  });

  it('names an instance whose machine does not answer and still prints the others', async () => {
    const out: LogsEntry[] = [];
    const end = await streamLogs(
      { namespace: 'shop', service: 'web', follow: false },
      {
        instances: async () => [record('a', 'm1'), record('b', 'm2')],
        reader: reader(new Map([['a', [line(1, 'a1')]]]), new Set(['m2']), new Set()),
        emit: (e) => out.push(e),
        signal: new AbortController().signal,
        clock: { now: () => new Date(), sleep: async () => {} },
        pollMs: 0,
      },
    );
    expect(out.map((e) => e.type)).toEqual(['unreachable', 'line']);
    const missing = out[0];
    expect(missing?.type === 'unreachable' && missing.error.code).toBe('MACHINE_UNREACHABLE');
    expect(end.unreachable).toEqual(['b']);
  });

  it('following, a new instance joins with its lines from its start and a removed one leaves', async () => {
    const logs = new Map([['a', [line(1, 'a1')]]]);
    const gone = new Set<string>();
    let instances = [record('a', 'm1')];
    const out: LogsEntry[] = [];
    const ac = new AbortController();
    let round = 0;
    const end = await streamLogs(
      { namespace: 'shop', service: 'web', follow: true, tail: 0 },
      {
        instances: async () => instances,
        reader: reader(logs, new Set(), gone),
        emit: (e) => out.push(e),
        signal: ac.signal,
        clock: {
          now: () => new Date(round === 0 ? t(2) : t(59)),
          sleep: async () => {
            round += 1;
            if (round === 1) {
              // A deploy: b starts and writes, a writes once more and is removed.
              logs.set('b', [line(2, 'b2'), line(4, 'b4')]);
              logs.set('a', [line(1, 'a1'), line(3, 'a3')]);
              instances = [record('b', 'm2')];
              gone.add('a');
            }
            if (round === 3) ac.abort();
          },
        },
        pollMs: 0,
      },
    );
    expect(summary(out)).toEqual(['b joined', 'b:b2', 'a:a3', 'b:b4', 'a left']);
    expect(end.reason).toBe('client_closed');
  });

  it('following, an instance recorded before its container joins and is read from its start once the container exists', async () => {
    const logs = new Map([['a', [line(1, 'a1')]]]);
    // Until its container exists the reader answers gone for b (the container is not there).
    const gone = new Set<string>(['b']);
    let instances = [record('a', 'm1')];
    const out: LogsEntry[] = [];
    const ac = new AbortController();
    let round = 0;
    await streamLogs(
      { namespace: 'shop', service: 'web', follow: true, tail: 0 },
      {
        instances: async () => instances,
        reader: reader(logs, new Set(), gone),
        emit: (e) => out.push(e),
        signal: ac.signal,
        clock: {
          now: () => new Date(t(59)),
          sleep: async () => {
            round += 1;
            // Round 1: the deploy writes b's record (starting, no container yet).
            if (round === 1) instances = [record('a', 'm1'), { ...record('b', 'm1'), container_id: null }];
            // Round 3: b's container is created and writes; its record names it.
            if (round === 3) {
              gone.delete('b');
              logs.set('b', [line(2, 'b listening')]);
              instances = [record('a', 'm1'), record('b', 'm1')];
            }
            if (round === 5) ac.abort();
          },
        },
        pollMs: 0,
      },
    );
    expect(summary(out)).toEqual(['b joined', 'b:b listening']);
  });

  it('following, an instance whose record goes before it had a container leaves', async () => {
    let instances = [{ ...record('b', 'm1'), container_id: null }];
    const out: LogsEntry[] = [];
    const ac = new AbortController();
    let round = 0;
    await streamLogs(
      { namespace: 'shop', service: 'web', follow: true },
      {
        instances: async () => instances,
        reader: reader(new Map(), new Set(), new Set(['b'])),
        emit: (e) => out.push(e),
        signal: ac.signal,
        clock: {
          now: () => new Date(t(59)),
          sleep: async () => {
            round += 1;
            if (round === 1) instances = [];
            if (round === 3) ac.abort();
          },
        },
        pollMs: 0,
      },
    );
    expect(summary(out)).toEqual(['b left']);
  });

  it('following, a listing that misses an instance once (a key rewritten meanwhile) does not make it leave', async () => {
    const logs = new Map([['b', [line(1, 'b1')]]]);
    // b's record is written before its container: absent from the second listing only.
    let listing = 0;
    const out: LogsEntry[] = [];
    const ac = new AbortController();
    let round = 0;
    await streamLogs(
      { namespace: 'shop', service: 'web', follow: true },
      {
        instances: async () => {
          listing += 1;
          if (listing === 1) return [];
          if (listing === 2) return [{ ...record('b', 'm1'), container_id: null }];
          if (listing === 3) return [];
          return [record('b', 'm1')];
        },
        reader: reader(logs, new Set(), new Set()),
        emit: (e) => out.push(e),
        signal: ac.signal,
        clock: {
          now: () => new Date(t(59)),
          sleep: async () => {
            round += 1;
            if (round === 5) ac.abort();
          },
        },
        pollMs: 0,
      },
    );
    expect(summary(out)).toEqual(['b joined', 'b:b1']);
  });

  it('is NO_RUNNING_INSTANCE for an instance the service does not have', async () => {
    await expect(
      streamLogs(
        { namespace: 'shop', service: 'web', follow: false, instance: 'nope' },
        {
          instances: async () => [record('a', 'm1')],
          reader: reader(new Map(), new Set(), new Set()),
          emit: () => {},
          signal: new AbortController().signal,
          clock: { now: () => new Date(), sleep: async () => {} },
          pollMs: 0,
        },
      ),
    ).rejects.toMatchObject({ code: 'NO_RUNNING_INSTANCE' });
  });
  it('is NO_RUNNING_INSTANCE for a service with no instance unless following', async () => {
    const deps = {
      instances: async () => [],
      reader: reader(new Map(), new Set(), new Set()),
      emit: () => {},
      signal: AbortSignal.abort(),
      clock: { now: () => new Date(), sleep: async () => {} },
      pollMs: 0,
    };
    await expect(
      streamLogs({ namespace: 'shop', service: 'web', follow: false }, deps),
    ).rejects.toMatchObject({ code: 'NO_RUNNING_INSTANCE' });
    const followed = await streamLogs({ namespace: 'shop', service: 'web', follow: true }, deps);
    expect(followed).toMatchObject({ lines: 0, reason: 'client_closed' });
  });
});
