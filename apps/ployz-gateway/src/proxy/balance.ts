/**
 * Which backend of a route serves a request: round robin per route, passing over for a while a
 * backend that refused a connection (unless every backend of the route did). A retry takes the
 * next backend after the one that failed.
 */
import type { Backend, Route } from '@ployz/routing';

/** A backend that refused a connection is passed over for this long. */
const DOWN_FOR_MS = 2000;

export class Balancer {
  readonly #next = new Map<string, number>();
  readonly #downUntil = new Map<string, number>();

  /** Where a request starts in `route.backends`; attempt `n` goes to `backendFor(route, start, n)`. */
  start(route: Route): number {
    const n = route.backends.length;
    const next = this.#next.get(route.id) ?? 0;
    this.#next.set(route.id, next + 1 >= 1 << 30 ? 0 : next + 1);
    if (this.#downUntil.size === 0 || n === 1) return next;
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const b = route.backends[(next + i) % n] as Backend;
      const until = this.#downUntil.get(b.key);
      if (until === undefined || until < now) return next + i;
    }
    return next;
  }

  /** `backend` refused a connection: passed over by `start` for a while. */
  markDown(backend: Backend): void {
    this.#downUntil.set(backend.key, Date.now() + DOWN_FOR_MS);
  }
}

/** The backend of attempt `attempt` (0 first) of a request that started at `start`. */
export function backendFor(route: Route, start: number, attempt: number): Backend {
  const backends = route.backends;
  return backends[(start + attempt) % backends.length] as Backend;
}
