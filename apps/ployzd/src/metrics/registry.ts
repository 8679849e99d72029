/**
 * A small Prometheus registry: labelled counters and histograms that are a map lookup and an add
 * to update, gauges read when scraped, all rendered as the text exposition format (0.0.4). No
 * dependency, like the gateway's and ployz-dns's metrics; every family renders its HELP and TYPE
 * even before its first sample, so a scrape always lists what ployzd measures.
 */

export type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** `{a="1",b="2"}` in the family's label order (empty for no labels); `extra` goes last (`le`). */
function labelText(names: readonly string[], labels: Labels, extra = ''): string {
  const parts = names.map((n) => `${n}="${escapeLabel(labels[n] ?? '')}"`);
  if (extra !== '') parts.push(extra);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

/** Prometheus' number text: `+Inf`, `-Inf`, `NaN`, else JavaScript's shortest round-trip form. */
function num(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

interface Family {
  readonly name: string;
  render(out: string[]): void;
}

abstract class Labelled<S> implements Family {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { labels: Labels; state: S }>();

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  protected abstract readonly type: string;
  protected abstract fresh(): S;
  protected abstract lines(out: string[], labels: Labels, state: S): void;

  protected at(labels: Labels): S {
    const key = this.labelNames.map((n) => labels[n] ?? '').join('\u0000');
    let entry = this.series.get(key);
    if (entry === undefined) {
      entry = { labels: { ...labels }, state: this.fresh() };
      this.series.set(key, entry);
    }
    return entry.state;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const { labels, state } of this.series.values()) this.lines(out, labels, state);
  }
}

export class Counter extends Labelled<{ value: number }> {
  protected readonly type = 'counter';
  protected fresh() {
    return { value: 0 };
  }
  inc(labels: Labels = {}, by = 1): void {
    this.at(labels).value += by;
  }
  /** The current value of one series (0 before its first increment). */
  value(labels: Labels = {}): number {
    return this.at(labels).value;
  }
  protected lines(out: string[], labels: Labels, state: { value: number }): void {
    out.push(`${this.name}${labelText(this.labelNames, labels)} ${num(state.value)}`);
  }
}

interface HistogramState {
  buckets: Float64Array;
  count: number;
  sum: number;
}

export class Histogram extends Labelled<HistogramState> {
  protected readonly type = 'histogram';
  /** Upper bounds, ascending; `+Inf` is implied. */
  readonly bounds: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]) {
    super(name, help, labelNames);
    this.bounds = bounds;
  }
  protected fresh(): HistogramState {
    return { buckets: new Float64Array(this.bounds.length), count: 0, sum: 0 };
  }
  observe(labels: Labels, value: number): void {
    const state = this.at(labels);
    state.count += 1;
    state.sum += value;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= (this.bounds[i] as number)) {
        state.buckets[i] = (state.buckets[i] ?? 0) + 1;
        return;
      }
    }
  }
  protected lines(out: string[], labels: Labels, state: HistogramState): void {
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += state.buckets[i] ?? 0;
      const le = `le="${num(this.bounds[i] as number)}"`;
      out.push(`${this.name}_bucket${labelText(this.labelNames, labels, le)} ${cumulative}`);
    }
    out.push(`${this.name}_bucket${labelText(this.labelNames, labels, 'le="+Inf"')} ${state.count}`);
    out.push(`${this.name}_sum${labelText(this.labelNames, labels)} ${num(state.sum)}`);
    out.push(`${this.name}_count${labelText(this.labelNames, labels)} ${state.count}`);
  }
}

/** One sample of a family read at scrape time. */
export interface Sample {
  labels?: Labels;
  /** Appended to the family name (`_sum`, `_count` of a summary). */
  suffix?: string;
  value: number;
}

/** A gauge (or summary) whose samples are read when scraped. */
class Collected implements Family {
  readonly name: string;
  readonly #help: string;
  readonly #type: string;
  readonly #collect: () => readonly Sample[];

  constructor(name: string, help: string, type: string, collect: () => readonly Sample[]) {
    this.name = name;
    this.#help = help;
    this.#type = type;
    this.#collect = collect;
  }

  render(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.#help)}`, `# TYPE ${this.name} ${this.#type}`);
    for (const s of this.#collect()) {
      const labels = s.labels ?? {};
      out.push(`${this.name}${s.suffix ?? ''}${labelText(Object.keys(labels), labels)} ${num(s.value)}`);
    }
  }
}

export class Registry {
  readonly #families: Family[] = [];

  #add<F extends Family>(family: F): F {
    if (this.#families.some((f) => f.name === family.name))
      throw new Error(`metric ${family.name} registered twice`);
    this.#families.push(family);
    return family;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#add(new Counter(name, help, labelNames));
  }

  histogram(name: string, help: string, labelNames: readonly string[], bounds: readonly number[]): Histogram {
    return this.#add(new Histogram(name, help, labelNames, bounds));
  }

  /** A gauge read at scrape time: one value, or labelled samples. */
  gauge(name: string, help: string, read: () => number | readonly Sample[]): void {
    this.#add(
      new Collected(name, help, 'gauge', () => {
        const v = read();
        return typeof v === 'number' ? [{ value: v }] : v;
      }),
    );
  }

  /** A counter kept elsewhere (e.g. the process's CPU time), read at scrape time. */
  counterOf(name: string, help: string, read: () => number): void {
    this.#add(new Collected(name, help, 'counter', () => [{ value: read() }]));
  }

  /** A summary read at scrape time: `quantile`-labelled samples plus `_sum` and `_count`. */
  summary(name: string, help: string, read: () => readonly Sample[]): void {
    this.#add(new Collected(name, help, 'summary', read));
  }

  /** The text exposition format, one family after another in registration order. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families) f.render(out);
    return `${out.join('\n')}\n`;
  }
}

/** The content type of `Registry.render()`. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
