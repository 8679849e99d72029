/**
 * The data plane follows Docker's event stream, not only the repair tick: every event on one of
 * this installation's system containers (`die`, `start`, `destroy`…) and every reconnect to the
 * engine (dockerd restarted) asks for a repair check at once. A check that changes nothing is
 * asked again a moment later, a few times, so the repair rule's second look at a stopped
 * component (Docker's restart policy gets the first chance) comes in seconds, not at the tick.
 */
import { LABELS } from '@ployz/identity';
import type Docker from 'dockerode';
import { type ContainerEvent, followContainerEvents } from '../runtime/docker.ts';

/** Events that may mean the data plane needs work: any on this installation's system containers. */
export function asksForRepair(event: ContainerEvent, installation: string): boolean {
  return event.labels[LABELS.kind] === 'system' && event.labels[LABELS.installation] === installation;
}

export interface EngineWatchOptions {
  installation: string;
  /** A repair check; resolves to null when it did nothing. */
  repair: () => Promise<unknown>;
  /** The pause before a check and between follow-up checks. */
  settleMs?: number;
  /** Follow-up checks after one that did nothing. */
  followUps?: number;
  onError?: (error: unknown) => void;
}

export function watchEngine(docker: Docker, opts: EngineWatchOptions, signal: AbortSignal): void {
  const settleMs = opts.settleMs ?? 500;
  // Enough follow-ups to outlast the stopped-component grace (plan.ts STOPPED_GRACE_MS).
  const followUps = opts.followUps ?? 10;
  let timer: NodeJS.Timeout | null = null;
  let left = 0;
  let checking = false;
  const schedule = (delay: number) => {
    if (signal.aborted || timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      void check();
    }, delay);
  };
  const check = async () => {
    if (checking) return schedule(settleMs);
    checking = true;
    try {
      const done = await opts.repair();
      left = done === null ? left - 1 : 0;
    } catch (error) {
      left--; // the engine may still be starting: look again shortly
      opts.onError?.(error);
    } finally {
      checking = false;
    }
    if (left > 0) schedule(settleMs);
  };
  const ask = () => {
    left = followUps;
    schedule(Math.min(settleMs, 100));
  };
  void followContainerEvents(
    docker,
    {
      onConnect: ask,
      onEvent: (e) => {
        if (asksForRepair(e, opts.installation)) ask();
      },
    },
    signal,
  );
  signal.addEventListener('abort', () => {
    if (timer !== null) clearTimeout(timer);
  });
}
