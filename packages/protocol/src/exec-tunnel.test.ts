import { describe, expect, it } from 'vitest';
import { encodeFrame, encodeFrames, FRAME, FrameReader, MAX_FRAME } from './exec-tunnel.ts';

describe('exec frames', () => {
  it('reassembles frames from chunks cut at every byte', () => {
    const wire = Buffer.concat([
      encodeFrame(FRAME.stdout, 'hello'),
      encodeFrame(FRAME.eof),
      encodeFrame(FRAME.exit, JSON.stringify({ exit_code: 7 })),
    ]);
    for (let cut = 1; cut < wire.length; cut++) {
      const reader = new FrameReader();
      const frames = [...reader.push(wire.subarray(0, cut)), ...reader.push(wire.subarray(cut))];
      expect(
        frames.map((f) => [f.kind, f.payload.toString()]),
        `cut ${cut}`,
      ).toEqual([
        [FRAME.stdout, 'hello'],
        [FRAME.eof, ''],
        [FRAME.exit, '{"exit_code":7}'],
      ]);
      expect(reader.pending).toBe(0);
    }
  });

  it('splits a long write and refuses an unknown kind or an oversized length', () => {
    const big = Buffer.alloc(MAX_FRAME + 10, 1);
    const frames = encodeFrames(FRAME.stdin, big);
    expect(frames).toHaveLength(2);
    const read = new FrameReader().push(Buffer.concat(frames));
    expect(Buffer.concat(read.map((f) => f.payload)).equals(big)).toBe(true);
    expect(() => new FrameReader().push(Buffer.from([9, 0, 0, 0, 0]))).toThrow(/unknown frame kind/);
    const huge = Buffer.alloc(5);
    huge.writeUInt8(FRAME.stdout, 0);
    huge.writeUInt32BE(MAX_FRAME + 1, 1);
    expect(() => new FrameReader().push(huge)).toThrow(/exceeds/);
  });
});
