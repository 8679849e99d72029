import { createHash } from 'node:crypto';
import { formatBytes } from '@ployz/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { OrderedWriter, progressGate, rateLine, rechunk, sendWindowed } from './flow.ts';

async function* pieces(...parts: (Buffer | string)[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.isBuffer(p) ? p : Buffer.from(p);
}

async function collect(source: AsyncIterable<Buffer>): Promise<string[]> {
  const out: string[] = [];
  for await (const c of source) out.push(c.toString());
  return out;
}

const tick = () => new Promise((r) => setImmediate(r));

describe('rechunk', () => {
  it('cuts exact sizes across input buffers, the last one shorter', async () => {
    expect(await collect(rechunk(pieces('ab', 'cdefg', 'h', '', 'ijk'), 3))).toEqual([
      'abc',
      'def',
      'ghi',
      'jk',
    ]);
    expect(await collect(rechunk(pieces('abcdef'), 3))).toEqual(['abc', 'def']);
    expect(await collect(rechunk(pieces(), 3))).toEqual([]);
  });

  it('any split of any input gives the same bytes in chunks of the size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 17 }),
        async (parts, size) => {
          const chunks: Buffer[] = [];
          for await (const c of rechunk(pieces(...parts.map((p) => Buffer.from(p))), size)) chunks.push(c);
          const all = Buffer.concat(parts.map((p) => Buffer.from(p)));
          expect(Buffer.concat(chunks).equals(all)).toBe(true);
          expect(chunks.slice(0, -1).every((c) => c.length === size)).toBe(true);
          expect(chunks.every((c) => c.length > 0 && c.length <= size)).toBe(true);
        },
      ),
    );
  });
});

/** A receiver stand-in: answers each send when the test says so. */
function manualReceiver() {
  const waiting: { seq: number; chunk: Buffer; ack: () => void; fail: (e: Error) => void }[] = [];
  let maxInflight = 0;
  const send = (seq: number, chunk: Buffer) =>
    new Promise<void>((ack, fail) => {
      waiting.push({ seq, chunk, ack, fail });
      maxInflight = Math.max(maxInflight, waiting.length);
    }).finally(() => {
      const i = waiting.findIndex((w) => w.seq === seq);
      if (i >= 0) waiting.splice(i, 1);
    });
  return { send, waiting, max: () => maxInflight };
}

describe('sendWindowed', () => {
  it('keeps at most `window` chunks unacknowledged and reads the source only as acks come', async () => {
    let read = 0;
    async function* source() {
      for (let i = 0; i < 10; i++) {
        read += 1;
        yield Buffer.from([i]);
      }
    }
    const r = manualReceiver();
    const acked: number[] = [];
    const done = sendWindowed(source(), r.send, { window: 3, onAcked: (a) => acked.push(a.chunks) });
    await tick();
    expect(r.waiting.map((w) => w.seq)).toEqual([0, 1, 2]);
    // The window is full: the fourth chunk is read (held) but not sent.
    expect(read).toBeLessThanOrEqual(4);
    r.waiting[1]?.ack(); // out of order acks are fine
    await tick();
    expect(r.waiting.map((w) => w.seq)).toEqual([0, 2, 3]);
    while (r.waiting.length > 0) {
      r.waiting[0]?.ack();
      await tick();
    }
    const summary = await done;
    expect(r.max()).toBe(3);
    expect(summary.chunks).toBe(10);
    expect(summary.bytes).toBe(10);
    expect(summary.sha256).toBe(
      createHash('sha256')
        .update(Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]))
        .digest('hex'),
    );
    expect(acked).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('the first failure stops sending, waits for the chunks in flight, and is the rejection', async () => {
    let read = 0;
    async function* source() {
      for (let i = 0; i < 100; i++) {
        read += 1;
        yield Buffer.from([i]);
      }
    }
    const r = manualReceiver();
    const done = sendWindowed(source(), r.send, { window: 4 });
    const outcome = done.then(
      () => 'resolved',
      (e: Error) => e.message,
    );
    await tick();
    r.waiting.find((w) => w.seq === 1)?.fail(new Error('chunk 1 refused'));
    r.waiting.find((w) => w.seq === 2)?.fail(new Error('chunk 2 refused too'));
    await tick();
    let settled = false;
    void outcome.then(() => {
      settled = true;
    });
    await tick();
    // Chunks 0 and 3 are still in flight: nothing new was sent, the call waits for them.
    expect(r.waiting.map((w) => w.seq).sort()).toEqual([0, 3]);
    expect(settled).toBe(false);
    for (const w of [...r.waiting]) w.ack();
    expect(await outcome).toBe('chunk 1 refused');
    expect(read).toBeLessThan(10);
  });

  it('a source that breaks off rejects with its error after the in-flight chunks', async () => {
    async function* source() {
      yield Buffer.from('a');
      yield Buffer.from('b');
      throw new Error('docker save broke off');
    }
    const sent: number[] = [];
    await expect(
      sendWindowed(
        source(),
        async (seq) => {
          sent.push(seq);
        },
        { window: 8 },
      ),
    ).rejects.toThrow('docker save broke off');
    expect(sent).toEqual([0, 1]);
  });

  it('an abort stops it with the signal’s reason', async () => {
    const abort = new AbortController();
    async function* source() {
      for (let i = 0; ; i++) yield Buffer.from([i % 256]);
    }
    const sent: number[] = [];
    const done = sendWindowed(
      source(),
      async (seq) => {
        sent.push(seq);
        if (seq === 5) abort.abort(new Error('deploy aborted'));
      },
      { window: 2, signal: abort.signal },
    );
    await expect(done).rejects.toThrow('deploy aborted');
    expect(sent.length).toBeLessThan(10);
  });

  it('an empty image sends nothing', async () => {
    const summary = await sendWindowed(
      pieces(),
      async () => {
        throw new Error('not called');
      },
      { window: 2 },
    );
    expect(summary).toMatchObject({ chunks: 0, bytes: 0 });
  });
});

describe('OrderedWriter', () => {
  it('writes in sequence order whatever the arrival order; each push resolves once its chunk is written', async () => {
    const written: string[] = [];
    const w = new OrderedWriter(async (c) => {
      written.push(c.toString());
    }, 4);
    const resolved: number[] = [];
    const push = (seq: number) => w.push(seq, Buffer.from(`c${seq}`)).then(() => resolved.push(seq));
    const all = [push(2), push(1), push(3)];
    await tick();
    expect(written).toEqual([]);
    expect(w.buffered).toBe(3);
    all.push(push(0));
    await Promise.all(all);
    expect(written).toEqual(['c0', 'c1', 'c2', 'c3']);
    expect(resolved.sort()).toEqual([0, 1, 2, 3]);
    expect(w.written).toBe(4);
    expect(w.bytes).toBe(8);
  });

  it('a resend of a written chunk resolves without writing; one buffered twice is written once', async () => {
    const written: string[] = [];
    let release: () => void = () => {};
    const w = new OrderedWriter(async (c) => {
      written.push(c.toString());
      if (c.toString() === 'a') await new Promise<void>((r) => (release = r));
    }, 4);
    const first = w.push(0, Buffer.from('a'));
    const second = w.push(1, Buffer.from('b'));
    const again = w.push(1, Buffer.from('b'));
    await tick();
    release();
    await Promise.all([first, second, again]);
    await w.push(0, Buffer.from('a'));
    expect(written).toEqual(['a', 'b']);
  });

  it('one write at a time: a write that waits (the load draining) holds the next ones back', async () => {
    let active = 0;
    let most = 0;
    const w = new OrderedWriter(async () => {
      active += 1;
      most = Math.max(most, active);
      await new Promise((r) => setTimeout(r, 2));
      active -= 1;
    }, 8);
    await Promise.all([5, 3, 1, 0, 2, 4, 7, 6].map((s) => w.push(s, Buffer.from([s]))));
    expect(most).toBe(1);
    expect(w.written).toBe(8);
  });

  it('refuses a chunk beyond the window', async () => {
    const w = new OrderedWriter(async () => {}, 2);
    await expect(w.push(2, Buffer.from('x'))).rejects.toThrow(/outside the window/);
    await w.push(0, Buffer.from('x'));
    await expect(w.push(3, Buffer.from('x'))).rejects.toThrow(/outside the window/);
  });

  it('a failed write rejects that chunk, the buffered ones and every later push', async () => {
    const w = new OrderedWriter(async (c) => {
      if (c.toString() === 'bad') throw new Error('docker load is gone');
    }, 4);
    const later = w.push(2, Buffer.from('c'));
    await w.push(0, Buffer.from('a'));
    await expect(w.push(1, Buffer.from('bad'))).rejects.toThrow('docker load is gone');
    await expect(later).rejects.toThrow('docker load is gone');
    await expect(w.push(3, Buffer.from('d'))).rejects.toThrow('docker load is gone');
    expect(w.failed).toBe(true);
  });

  it('fail() rejects the waiting pushes (an abort)', async () => {
    const w = new OrderedWriter(async () => {}, 4);
    const waiting = w.push(1, Buffer.from('b'));
    w.fail(new Error('aborted by the sender'));
    await expect(waiting).rejects.toThrow('aborted by the sender');
  });

  it('end to end with sendWindowed over an unordered, delaying channel: the bytes arrive intact', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 20 }),
        async (data, window, delays) => {
          const out: Buffer[] = [];
          const writer = new OrderedWriter(async (c) => {
            out.push(c);
          }, window);
          const summary = await sendWindowed(
            rechunk(pieces(Buffer.from(data)), 7),
            async (seq, chunk) => {
              const d = delays[seq % delays.length] ?? 0;
              for (let i = 0; i < d; i++) await tick();
              await writer.push(seq, chunk);
            },
            { window },
          );
          expect(Buffer.concat(out).equals(Buffer.from(data))).toBe(true);
          expect(summary.bytes).toBe(data.length);
          expect(writer.written).toBe(summary.chunks);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('progress and sizes', () => {
  it('progressGate lets one through per interval', () => {
    let t = 0;
    const gate = progressGate(1000, () => t);
    expect(gate()).toBe(true);
    t = 500;
    expect(gate()).toBe(false);
    t = 1000;
    expect(gate()).toBe(true);
  });

  it('formats sizes and rates as Docker does (decimal)', () => {
    expect(formatBytes(999)).toBe('999 B');
    expect(formatBytes(214_033_920)).toBe('214.0 MB');
    expect(rateLine(214_033_920, 4)).toBe('214.0 MB in 4.0 s (53.5 MB/s)');
  });
});
