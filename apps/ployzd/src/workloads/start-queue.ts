/**
 * Bounded start concurrency per machine: at most `limit` instances of one machine are between
 * "create" and "ready" at any moment, so forty cold starts on a two-core machine are pipelined
 * (create → start → readiness, the next one entering as one becomes ready) instead of all at once.
 * Pure scheduling over injected work; the engine supplies the work and reports progress.
 */

/** Cold starts in flight per machine by default: four per core, at least two. */
export function defaultStartConcurrency(cpus: number): number {
  return Math.max(2, Math.floor(cpus) * 4);
}

export interface StartItem {
  machine: string;
  run: () => Promise<void>;
}

/**
 * Runs every item, at most `limitOf(machine)` at once per machine, in the given order per
 * machine. Resolves to one settled result per item (in input order). Once `signal` is aborted,
 * items not yet begun are not begun: they settle with the abort reason.
 */
export async function runBounded(
  items: readonly StartItem[],
  limitOf: (machine: string) => number,
  signal: AbortSignal,
): Promise<PromiseSettledResult<void>[]> {
  const results: PromiseSettledResult<void>[] = new Array(items.length);
  const byMachine = new Map<string, number[]>();
  items.forEach((item, i) => {
    const list = byMachine.get(item.machine) ?? [];
    list.push(i);
    byMachine.set(item.machine, list);
  });
  const lanes: Promise<void>[] = [];
  for (const [machine, indexes] of byMachine) {
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = indexes[next++];
        if (i === undefined) return;
        const item = items[i] as StartItem;
        if (signal.aborted) {
          results[i] = { status: 'rejected', reason: signal.reason };
          continue;
        }
        try {
          await item.run();
          results[i] = { status: 'fulfilled', value: undefined };
        } catch (reason) {
          results[i] = { status: 'rejected', reason };
        }
      }
    };
    const width = Math.max(1, Math.min(limitOf(machine), indexes.length));
    for (let w = 0; w < width; w++) lanes.push(worker());
  }
  await Promise.all(lanes);
  return results;
}
