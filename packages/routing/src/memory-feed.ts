import {
  PloyzError,
  type RoutingEvent,
  type RoutingFeed,
  type RoutingSnapshot,
  type SequencedRoutingEvent,
} from '@ployz/types';
import { ProjectionState } from './state.ts';

/**
 * An in-memory RoutingFeed: a fake that stands beside the NATS-backed feed of @ployz/store for
 * pure tests and benchmarks. `publish()` appends an event; `setUnavailable(true)` makes every
 * call fail with STORE_UNAVAILABLE and breaks active follows, like a store outage.
 */
export class MemoryRoutingFeed implements RoutingFeed {
  readonly #state: ProjectionState;
  readonly #events: SequencedRoutingEvent[] = [];
  readonly #wakers = new Set<() => void>();
  #unavailable = false;

  constructor(initial?: Partial<Omit<RoutingSnapshot, 'seq'>>) {
    this.#state = ProjectionState.fromSnapshot({
      seq: 0,
      machines: initial?.machines ?? [],
      revisions: initial?.revisions ?? [],
      releases: initial?.releases ?? [],
      instances: initial?.instances ?? [],
    });
  }

  get seq(): number {
    return this.#state.seq;
  }

  /** Appends events (and applies them to the records a later snapshot returns); returns the last seq. */
  publish(...events: RoutingEvent[]): number {
    for (const event of events) {
      const seq = this.#state.seq + 1;
      this.#state.apply(event, seq);
      this.#events.push({ seq, event });
    }
    this.#wake();
    return this.#state.seq;
  }

  setUnavailable(unavailable: boolean): void {
    this.#unavailable = unavailable;
    this.#wake();
  }

  async snapshot(): Promise<RoutingSnapshot> {
    this.#check();
    const s = this.#state;
    return {
      seq: s.seq,
      machines: [...s.machines.values()],
      revisions: [...s.revisions.values()],
      releases: [...s.releases.values()],
      instances: [...s.instances.values()],
    };
  }

  async lastSeq(): Promise<number | null> {
    return this.#unavailable ? null : this.#state.seq;
  }

  async *follow(fromSeq: number, signal: AbortSignal): AsyncIterable<SequencedRoutingEvent> {
    let next = fromSeq + 1;
    while (!signal.aborted) {
      this.#check();
      const first = this.#events[0]?.seq ?? 1;
      while (next <= this.#state.seq) {
        const item = this.#events[next - first];
        if (item === undefined) throw new PloyzError('STORE_UNAVAILABLE', `event ${next} is missing`);
        next += 1;
        yield item;
        if (signal.aborted || this.#unavailable) break;
      }
      if (signal.aborted) return;
      this.#check();
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#wakers.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        this.#wakers.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  #check(): void {
    if (this.#unavailable) {
      throw new PloyzError('STORE_UNAVAILABLE', 'the in-memory routing feed is set unavailable');
    }
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake();
  }
}
