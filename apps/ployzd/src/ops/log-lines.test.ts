import { describe, expect, it } from 'vitest';
import {
  advanceCursor,
  afterCursor,
  dockerLogLines,
  dockerSince,
  logTime,
  logTimeOf,
  mergeByTime,
  takeUpTo,
} from './log-lines.ts';

/** A Docker multiplexed frame: [stream, 0, 0, 0, size BE32] + payload. */
function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const head = Buffer.alloc(8);
  head.writeUInt8(stream, 0);
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

const t = (n: number) => `2026-12-02T10:00:0${n}.000000000Z`;

describe('logTime', () => {
  it('writes every time with nine fraction digits, so text order is time order', () => {
    expect(logTime('2026-12-02T10:00:00.5Z')).toBe('2026-12-02T10:00:00.500000000Z');
    expect(logTime('2026-12-02T10:00:00Z')).toBe('2026-12-02T10:00:00.000000000Z');
    expect(logTime('2026-12-02T10:00:00.123456789Z')).toBe('2026-12-02T10:00:00.123456789Z');
    expect(logTime('hello')).toBeNull();
    const a = logTime('2026-12-02T10:00:00.5Z') ?? '';
    const b = logTime('2026-12-02T10:00:00.123Z') ?? '';
    expect(b < a).toBe(true);
  });

  it('turns an RFC 3339 time with an offset into UTC and Docker since text', () => {
    expect(logTimeOf('2026-12-02T11:00:00.25+01:00')).toBe('2026-12-02T10:00:00.250000000Z');
    expect(dockerSince('2026-12-02T10:00:00.250000000Z')).toBe(
      `${Date.parse('2026-12-02T10:00:00Z') / 1000}.250000000`,
    );
  });
});

describe('dockerLogLines', () => {
  it('reads multiplexed frames into timed lines per stream, a line split over frames joined', () => {
    const buf = Buffer.concat([
      frame(1, `${t(1)} hello\n${t(3)} par`),
      frame(2, `${t(2)} oops\n`),
      frame(1, 'tial\n'),
    ]);
    expect(dockerLogLines(buf, false)).toEqual([
      { at: t(1), stream: 'stdout', text: 'hello' },
      { at: t(2), stream: 'stderr', text: 'oops' },
      { at: t(3), stream: 'stdout', text: 'partial' },
    ]);
  });

  it('reads a TTY container’s raw bytes as stdout and drops the carriage return', () => {
    expect(dockerLogLines(Buffer.from(`${t(1)} a\r\n${t(2)} b\r\n`), true)).toEqual([
      { at: t(1), stream: 'stdout', text: 'a' },
      { at: t(2), stream: 'stdout', text: 'b' },
    ]);
  });
});

describe('cursor', () => {
  const lines = [t(1), t(2), t(2), t(3)].map((at, i) => ({ at, n: i }));

  it('takes only what comes after it, lines at the same time counted', () => {
    expect(afterCursor(lines, null)).toHaveLength(4);
    expect(afterCursor(lines, { at: t(2), seen: 1 }).map((l) => l.n)).toEqual([2, 3]);
    expect(afterCursor(lines, { at: t(2), seen: 2 }).map((l) => l.n)).toEqual([3]);
  });

  it('advances over the lines taken, adding to its count at the same time', () => {
    expect(advanceCursor(null, lines.slice(0, 3))).toEqual({ at: t(2), seen: 2 });
    expect(advanceCursor({ at: t(2), seen: 2 }, [])).toEqual({ at: t(2), seen: 2 });
    expect(advanceCursor({ at: t(2), seen: 1 }, [lines[2] as { at: string }])).toEqual({ at: t(2), seen: 2 });
  });

  it('reading in chunks of any size gives every line exactly once', () => {
    for (const size of [1, 2, 3]) {
      let cursor = null as ReturnType<typeof advanceCursor>;
      const got: number[] = [];
      for (let i = 0; i < 10; i++) {
        const chunk = afterCursor(lines, cursor).slice(0, size);
        got.push(...chunk.map((l) => l.n));
        cursor = advanceCursor(cursor, chunk);
      }
      expect(got, `chunk ${size}`).toEqual([0, 1, 2, 3]);
    }
  });
});

describe('mergeByTime', () => {
  it('merges several time-ordered lists by time, earlier list first at equal times', () => {
    const a = [
      { at: t(1), id: 'a1' },
      { at: t(3), id: 'a3' },
    ];
    const b = [
      { at: t(1), id: 'b1' },
      { at: t(2), id: 'b2' },
      { at: t(4), id: 'b4' },
    ];
    expect(mergeByTime([a, b, []]).map((l) => l.id)).toEqual(['a1', 'b1', 'b2', 'a3', 'b4']);
  });

  it('releases only lines at or before the watermark and keeps the rest', () => {
    const { ready, rest } = takeUpTo(
      [
        [
          { at: t(1), id: 'a1' },
          { at: t(5), id: 'a5' },
        ],
        [{ at: t(2), id: 'b2' }],
      ],
      t(3),
    );
    expect(ready.map((l) => l.id)).toEqual(['a1', 'b2']);
    expect(rest.map((r) => r.map((l) => l.id))).toEqual([['a5'], []]);
  });
});
