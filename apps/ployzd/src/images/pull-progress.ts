/**
 * A pull as the engine reports it, pure: Docker's `POST /images/create` answers NDJSON lines
 * (`Pulling fs layer`, `Downloading` with current/total, `Pull complete`, `Already exists`, an
 * `error` line), folded here into one progress (layers, bytes so far, announced total); and a
 * registry's refusal sorted into why (unreachable, unauthorized, not found) from the engine's words.
 */
import type { PullFailure } from '@ployz/protocol';

export interface PullProgress {
  layers: number;
  layers_done: number;
  bytes: number;
  total_bytes: number | null;
}

interface Layer {
  current: number;
  total: number | null;
  done: boolean;
}

export interface PullLine {
  status?: unknown;
  id?: unknown;
  progressDetail?: { current?: unknown; total?: unknown };
  error?: unknown;
  errorDetail?: { message?: unknown };
}

const LAYER_DONE = new Set(['Pull complete', 'Already exists', 'Download complete']);

/** Folds pull lines; `error` holds the engine's message once a line says the pull failed. */
export class PullTracker {
  readonly #layers = new Map<string, Layer>();
  error: string | null = null;

  /** One NDJSON line (unparsable ones are ignored). */
  line(text: string): void {
    if (text.trim() === '') return;
    let item: PullLine;
    try {
      item = JSON.parse(text) as PullLine;
    } catch {
      return;
    }
    this.add(item);
  }

  add(item: PullLine): void {
    if (item.error !== undefined || item.errorDetail !== undefined) {
      this.error = String(item.errorDetail?.message ?? item.error);
      return;
    }
    const status = typeof item.status === 'string' ? item.status : '';
    const id = typeof item.id === 'string' ? item.id : null;
    // Lines without an id, or whose id is the tag ("Pulling from team/app", id "1.2"), are not layers.
    if (id === null || status.startsWith('Pulling from')) return;
    const layer = this.#layers.get(id) ?? { current: 0, total: null, done: false };
    this.#layers.set(id, layer);
    const current = Number(item.progressDetail?.current);
    const total = Number(item.progressDetail?.total);
    if (status === 'Downloading') {
      if (Number.isFinite(current)) layer.current = current;
      if (Number.isFinite(total) && total > 0) layer.total = total;
    } else if (LAYER_DONE.has(status)) {
      if (status !== 'Already exists' && layer.total !== null) layer.current = layer.total;
      if (status !== 'Download complete') layer.done = true;
    }
  }

  get progress(): PullProgress {
    let bytes = 0;
    let total = 0;
    let known = false;
    let done = 0;
    for (const l of this.#layers.values()) {
      bytes += l.current;
      if (l.total !== null) {
        total += l.total;
        known = true;
      }
      if (l.done) done += 1;
    }
    return { layers: this.#layers.size, layers_done: done, bytes, total_bytes: known ? total : null };
  }
}

/** Why the engine could not pull or inspect a registry's image, from its message. */
export function pullFailureOf(message: string): PullFailure {
  const m = message.toLowerCase();
  if (/unauthorized|authentication required|no basic auth credentials|access .*denied/.test(m))
    return 'unauthorized';
  if (
    /connection refused|no such host|i\/o timeout|timeout|dial tcp|network is unreachable|connection reset|server gave http response|\beof\b/.test(
      m,
    )
  )
    return 'unreachable';
  if (/manifest unknown|not found|name unknown|no such image/.test(m)) return 'not_found';
  return 'failed';
}

/** What to tell the user to do about a failure, by its reason. */
export function pullAdvice(reason: PullFailure, registry: string): string {
  switch (reason) {
    case 'unreachable':
      return `check that ${registry} answers from this machine`;
    case 'unauthorized':
      return `store credentials with: ployzctl registry login ${registry} --username <u> --password-stdin`;
    case 'not_found':
      return 'check the repository and tag (or digest) in the manifest';
    case 'failed':
      return 'see the message; deploy again once the registry is healthy';
    default: {
      const unreachable: never = reason;
      return unreachable;
    }
  }
}
