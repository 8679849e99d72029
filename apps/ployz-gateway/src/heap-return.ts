/**
 * Gives the heap a burst grew back once the burst is over (issue 22: 10,000 idle keep-alive
 * clients within 250 MB). A burst of concurrent requests or connections (1000 clients at once)
 * promotes their sockets, exchanges and buffers into V8's old generation and grows the young
 * one; V8 shrinks neither while requests keep coming (its memory reducer waits for a low
 * allocation rate), so the RSS of a burst stays for good. When the load has fallen to a quarter
 * of its peak and stayed there for a few samples, one memory-reducing full GC (the `gc` that
 * `--expose-gc` installs, flavor `last-resort`: compacts, releases empty pages, shrinks the young
 * generation) returns it — at most once per `minGapMs`, and only after a real burst.
 */

/** The load the policy samples: requests in flight and open client connections. */
export interface Load {
  inFlight: number;
  connections: number;
}

export interface HeapReturnOptions {
  /** What the gateway carries now. */
  load(): Load;
  /** The GC to run (`globalThis.gc` under `--expose-gc`); undefined: the policy never runs. */
  gc: ((options: { type: 'major'; flavor: 'last-resort' }) => void) | undefined;
  /** Told how much was returned (heap sizes before and after). */
  onReturn?(before: HeapSizes, after: HeapSizes): void;
  /** Sampling period (default 1 s). */
  sampleMs?: number;
  /** Clock (tests). */
  now?(): number;
}

export interface HeapSizes {
  /** Bytes V8 holds for its heap (`heapTotal`). */
  total: number;
  used: number;
}

/** A burst: at least this many requests in flight at once… */
export const BURST_IN_FLIGHT = 256;
/** …or this many client connections open at once. */
export const BURST_CONNECTIONS = 2048;
/** Samples in a row at a quarter of the peak or less before the heap is returned. */
export const CALM_SAMPLES = 5;
/** Fewest milliseconds between two returns (a full GC pauses the event loop for tens of ms). */
export const MIN_GAP_MS = 30_000;

type GcFunction = (options: { type: 'major'; flavor: 'last-resort' }) => void;

/** `globalThis.gc` when node runs with `--expose-gc`, else undefined. */
export function exposedGc(): GcFunction | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as GcFunction) : undefined;
}

function heapSizes(): HeapSizes {
  const m = process.memoryUsage();
  return { total: m.heapTotal, used: m.heapUsed };
}

/** The policy: fed one sample at a time (`sample`), it says when to return the heap. */
export class HeapReturn {
  readonly #options: HeapReturnOptions;
  #peak: Load = { inFlight: 0, connections: 0 };
  #calm = 0;
  #lastReturn = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  /** Heap returns so far. */
  returns = 0;

  constructor(options: HeapReturnOptions) {
    this.#options = options;
  }

  start(): void {
    if (this.#options.gc === undefined || this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.sample(), this.#options.sampleMs ?? 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One sample of the load; returns the heap when a burst is over. True when it did. */
  sample(): boolean {
    const gc = this.#options.gc;
    if (gc === undefined) return false;
    const load = this.#options.load();
    const peak = this.#peak;
    peak.inFlight = Math.max(peak.inFlight, load.inFlight);
    peak.connections = Math.max(peak.connections, load.connections);
    const burstInFlight = peak.inFlight >= BURST_IN_FLIGHT;
    const burstConnections = peak.connections >= BURST_CONNECTIONS;
    // Calm: every measure that burst is down to a quarter of its peak.
    const calm =
      (!burstInFlight || load.inFlight * 4 <= peak.inFlight) &&
      (!burstConnections || load.connections * 4 <= peak.connections);
    this.#calm = (burstInFlight || burstConnections) && calm ? this.#calm + 1 : 0;
    const now = this.#options.now?.() ?? performance.now();
    if (this.#calm < CALM_SAMPLES || now - this.#lastReturn < MIN_GAP_MS) return false;
    const before = heapSizes();
    gc({ type: 'major', flavor: 'last-resort' });
    this.#options.onReturn?.(before, heapSizes());
    this.returns += 1;
    this.#lastReturn = now;
    this.#calm = 0;
    this.#peak = { inFlight: load.inFlight, connections: load.connections };
    return true;
  }
}
