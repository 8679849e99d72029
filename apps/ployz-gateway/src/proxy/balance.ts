/**
 * Which backend of a route serves a request: round robin per route, passing over for a while a
 * backend that refused a connection, and passing over every backend of a machine marked down
 * (proxy/machine-health.ts) — unless every backend of the route is passed over. A retry takes
 * the next backend after the one that failed, the ones of down machines last.
 */
import type { Backend, Route } from '@ployz/routing';

/** A backend that refused a connection is passed over for this long. */
const DOWN_FOR_MS = 2000;

export class Balancer {
  readonly #next = new Map<string, number>();
  readonly #downUntil = new Map<string, number>();
  /** Machines marked down (live: MachineHealth's set). */
  readonly #machinesDown: ReadonlySet<string>;

  constructor(machinesDown: ReadonlySet<string> = new Set()) {
    this.#machinesDown = machinesDown;
  }

  /** Where a request starts in `route.backends`; each attempt's backend is `backend(route, start, tried)`. */
  start(route: Route): number {
    const n = route.backends.length;
    const next = this.#next.get(route.id) ?? 0;
    this.#next.set(route.id, next + 1 >= 1 << 30 ? 0 : next + 1);
    if ((this.#downUntil.size === 0 && this.#machinesDown.size === 0) || n === 1) return next;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const b = route.backends[(next + i) % n] as Backend;
      if (this.#machinesDown.has(b.machine)) continue;
      const until = this.#downUntil.get(b.key);
      if (until === undefined || until < now) return next + i;
    }
    return next;
  }

  /**
   * The backend of the next attempt of a request that started at `start` and already went to
   * `tried` (empty: the first attempt): the first untried backend in round-robin order from
   * `start` that is not on a machine marked down; else the first untried one; else (every backend
   * tried) the next in order.
   */
  backend(route: Route, start: number, tried: readonly Backend[]): Backend {
    const backends = route.backends;
    const n = backends.length;
    if (tried.length === 0 && (this.#machinesDown.size === 0 || n === 1))
      return backends[start % n] as Backend;
    let fallback: Backend | undefined;
    for (let i = 0; i < n; i++) {
      const b = backends[(start + i) % n] as Backend;
      if (tried.includes(b)) continue;
      if (!this.#machinesDown.has(b.machine)) return b;
      fallback ??= b;
    }
    return fallback ?? (backends[(start + tried.length) % n] as Backend);
  }

  /** `backend` refused a connection: passed over by `start` for a while. */
  markDown(backend: Backend): void {
    this.#downUntil.set(backend.key, Date.now() + DOWN_FOR_MS);
  }
}
