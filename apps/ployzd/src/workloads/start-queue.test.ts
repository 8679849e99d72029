import { describe, expect, it } from 'vitest';
import { defaultStartConcurrency, runBounded, type StartItem } from './start-queue.ts';

/** Work that stays "in flight" until released; records the peak concurrency per machine. */
function tracker() {
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const pending: Array<() => void> = [];
  const item = (machine: string, fail = false): StartItem => ({
    machine,
    run: async () => {
      const n = (inFlight.get(machine) ?? 0) + 1;
      inFlight.set(machine, n);
      peak.set(machine, Math.max(peak.get(machine) ?? 0, n));
      await new Promise<void>((r) => pending.push(r));
      inFlight.set(machine, (inFlight.get(machine) ?? 1) - 1);
      if (fail) throw new Error(`failed on ${machine}`);
    },
  });
  const drain = async () => {
    for (let rounds = 0; rounds < 1000; rounds++) {
      await new Promise((r) => setImmediate(r));
      const next = pending.shift();
      if (next === undefined) {
        await new Promise((r) => setImmediate(r));
        if (pending.length === 0) return;
        continue;
      }
      next();
    }
  };
  return { item, peak, drain };
}

describe('runBounded', () => {
  it('never has more than the limit in flight per machine, and runs everything', async () => {
    const t = tracker();
    const items = [
      ...Array.from({ length: 40 }, () => t.item('m1')),
      ...Array.from({ length: 5 }, () => t.item('m2')),
    ];
    const done = runBounded(items, (m) => (m === 'm1' ? 4 : 2), new AbortController().signal);
    await t.drain();
    const results = await done;
    expect(results).toHaveLength(45);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(t.peak.get('m1')).toBe(4);
    expect(t.peak.get('m2')).toBe(2);
  });

  it('after an abort, items not yet begun are not begun and carry the reason', async () => {
    const t = tracker();
    const ac = new AbortController();
    const items = [t.item('m1', true), t.item('m1'), t.item('m1')];
    const done = runBounded(
      items.map((it, i) => ({
        machine: it.machine,
        run: async () => {
          try {
            await it.run();
          } catch (err) {
            if (i === 0) ac.abort(err);
            throw err;
          }
        },
      })),
      () => 1,
      ac.signal,
    );
    await t.drain();
    const results = await done;
    expect(results[0]).toMatchObject({ status: 'rejected', reason: { message: 'failed on m1' } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: 'failed on m1' } });
    expect(results[2]).toMatchObject({ status: 'rejected' });
    expect(t.peak.get('m1')).toBe(1);
  });

  it('defaults to four cold starts per core, at least two', () => {
    expect(defaultStartConcurrency(2)).toBe(8);
    expect(defaultStartConcurrency(0)).toBe(2);
  });
});
