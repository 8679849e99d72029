import { describe, expect, it } from 'vitest';
import {
  BURST_CONNECTIONS,
  BURST_IN_FLIGHT,
  CALM_SAMPLES,
  HeapReturn,
  type Load,
  MIN_GAP_MS,
} from './heap-return.ts';

/** A policy over a scripted load and clock, counting the GCs it asks for. */
function policy() {
  const state = { load: { inFlight: 0, connections: 0 } as Load, now: 0, gcs: [] as unknown[] };
  const heap = new HeapReturn({
    load: () => state.load,
    now: () => state.now,
    gc: (options) => state.gcs.push(options),
  });
  const run = (load: Load, samples: number) => {
    let returned = 0;
    for (let i = 0; i < samples; i++) {
      state.load = load;
      state.now += 1000;
      if (heap.sample()) returned += 1;
    }
    return returned;
  };
  return { state, heap, run };
}

describe('HeapReturn', () => {
  it('returns the heap once a burst of requests has calmed down, with a memory-reducing full GC', () => {
    const { state, run } = policy();
    expect(run({ inFlight: BURST_IN_FLIGHT * 2, connections: 600 }, 8)).toBe(0);
    expect(run({ inFlight: 64, connections: 64 }, CALM_SAMPLES - 1)).toBe(0);
    expect(run({ inFlight: 64, connections: 64 }, 1)).toBe(1);
    expect(state.gcs).toEqual([{ type: 'major', flavor: 'last-resort' }]);
    // The same calm load afterwards is no new burst.
    expect(run({ inFlight: 64, connections: 64 }, 100)).toBe(0);
  });

  it('never runs under steady load, however high, nor while the burst goes on', () => {
    const { state, run } = policy();
    expect(run({ inFlight: 60, connections: 1000 }, 100)).toBe(0);
    expect(run({ inFlight: BURST_IN_FLIGHT * 4, connections: 1000 }, 100)).toBe(0);
    // Half the peak is still the burst.
    expect(run({ inFlight: BURST_IN_FLIGHT * 2, connections: 1000 }, 100)).toBe(0);
    expect(state.gcs).toHaveLength(0);
  });

  it('counts a burst of connections too, and waits for them to close', () => {
    const { run } = policy();
    expect(run({ inFlight: 64, connections: BURST_CONNECTIONS * 5 }, 20)).toBe(0);
    expect(run({ inFlight: 64, connections: 100 }, CALM_SAMPLES)).toBe(1);
  });

  it('returns at most once per MIN_GAP_MS', () => {
    const { run } = policy();
    const burst = { inFlight: BURST_IN_FLIGHT * 2, connections: 0 };
    const calm = { inFlight: 0, connections: 0 };
    expect(run(burst, 1) + run(calm, CALM_SAMPLES)).toBe(1);
    expect(run(burst, 1) + run(calm, CALM_SAMPLES)).toBe(0);
    expect(run(calm, MIN_GAP_MS / 1000)).toBe(1);
  });

  it('does nothing without an exposed gc', () => {
    const heap = new HeapReturn({ load: () => ({ inFlight: 0, connections: 0 }), gc: undefined });
    expect(heap.sample()).toBe(false);
  });
});
