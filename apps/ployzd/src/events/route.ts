/**
 * The `events` route of the local API: the routing events of `routing_events_<auth>` as NDJSON
 * progress lines, one per event, from a sequence (inclusive, default the oldest kept). Without
 * `follow` the stream ends at the last event stored when the request came; with it, it follows new
 * events until the client goes away. A feed that breaks (NATS lost, gap) ends the stream with that
 * error. `eventLine` (pure) flattens an event to what `ployzctl events` prints. The line, the
 * request and the end are @ployz/protocol's `EventView`, `EventsQuery` and `EventsEnd`.
 */
import type { EventsEnd, EventsQuery, EventView } from '@ployz/protocol';
import { PloyzError, type RoutingFeed, type SequencedRoutingEvent } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/daemon.ts';
import type { MachineIdentity } from '../machine/identity.ts';

/** The identifying fields of an event, whatever its type. */
export function eventLine({ seq, event }: SequencedRoutingEvent): EventView {
  const base = { seq, type: event.type, at: event.at, deploy_id: event.deploy_id, event };
  const none = { namespace: null, service: null, instance: null, machine: null };
  switch (event.type) {
    case 'machine_upserted':
      return { ...base, ...none, machine: event.machine.id };
    case 'machine_removed':
      return { ...base, ...none, machine: event.machine_id };
    case 'revision_stored':
      return { ...base, ...none, namespace: event.revision.namespace, service: event.revision.service };
    case 'release_committed':
      return { ...base, ...none, namespace: event.release.namespace, service: event.release.service };
    case 'release_removed':
      return { ...base, ...none, namespace: event.namespace, service: event.service };
    case 'instance_upserted':
      return {
        ...base,
        namespace: event.instance.namespace,
        service: event.instance.service,
        instance: event.instance.id,
        machine: event.instance.machine,
      };
    case 'instance_removed':
      return { ...base, ...none, instance: event.instance_id };
    default: {
      const never: never = event;
      throw new PloyzError('INTERNAL', `unknown routing event ${JSON.stringify(never)}`);
    }
  }
}

/**
 * Sends the events of `feed` from `request.from_seq` through `emit` until caught up (no follow)
 * or until `signal` aborts (follow). With a namespace, only events that name it are sent.
 */
export async function streamEvents(
  feed: Pick<RoutingFeed, 'follow' | 'lastSeq'>,
  request: EventsQuery,
  emit: (line: EventView) => void,
  signal: AbortSignal,
): Promise<EventsEnd> {
  const from = request.from_seq ?? 1;
  let lastSent = from - 1;
  let until: number | null = null;
  if (!request.follow) {
    const last = await feed.lastSeq();
    if (last === null) {
      throw new PloyzError(
        'STORE_UNAVAILABLE',
        'the routing event stream cannot be read; see ployzctl status',
      );
    }
    if (last < from) return { reason: 'caught_up', last_seq: lastSent };
    until = last;
  }
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const e of feed.follow(from - 1, ac.signal)) {
      const line = eventLine(e);
      if (request.namespace === undefined || line.namespace === request.namespace) emit(line);
      lastSent = e.seq;
      if (until !== null && e.seq >= until) return { reason: 'caught_up', last_seq: lastSent };
    }
    return { reason: 'client_closed', last_seq: lastSent };
  } finally {
    signal.removeEventListener('abort', onAbort);
    ac.abort();
  }
}

/** Registers the `events` route; its feed is the store opened when NATS is connected. */
export function eventsPlugin(): DaemonPlugin {
  let feed: RoutingFeed | null = null;
  return {
    name: 'events',
    register(ctx: DaemonContext) {
      ctx.implement('events', (query, { emit, signal }) => {
        if (feed === null) {
          throw new PloyzError(
            'STORE_UNAVAILABLE',
            'routing events are not readable yet (machine not initialised or NATS not connected); see ployzctl status',
          );
        }
        return streamEvents(feed, query, emit, signal);
      });
    },
    async start(ctx: DaemonContext, _machine: MachineIdentity) {
      feed = ctx.store().routing;
    },
    async stop() {
      // The store shares the daemon's NATS link, which the daemon closes itself.
      feed = null;
    },
  };
}
