/**
 * The ephemeral consumers a listing reads through (a bucket's records, a namespace's commits).
 *
 * nats-server 2.9 puts an ephemeral consumer (R1) on a random peer of its stream among those it
 * does not know to be offline, and a peer cut from the network (no shutdown event) is not known
 * offline for minutes: measured on a promoted fleet with one member cut, a third of the listings
 * waited on the dead peer until the request timeout (and again at each new try: the placement
 * is random). A consumer replicated like its stream does not help: its group includes the dead
 * peer too, and waited longer still for its leader. So on a clustered store the consumer gets one
 * bounded try (LIST_TRY_MS); when it is silent the caller lists without a consumer — the subjects
 * from the stream's leader (`subjects_filter`), then each one's last message — which only live
 * servers answer; a connection is known clustered by its server (a member), by its owner
 * (`reachesClusterThroughLeaf`) or by a consumer's answer naming the cluster (the gateway and DNS
 * behind their machine's leaf). For LIST_BYPASS_MS after a silence every listing on that connection does so
 * at once. The abandoned consumer lapses on its own (`inactive_threshold`).
 */
import {
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamManager,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { isClustered, isSilence, noteClusterAnswer } from './quorum.ts';

/** How long a listing consumer on a clustered store may take to be placed. */
export const LIST_TRY_MS = 1500;
/** Reads in flight at once when a listing goes subject by subject. */
export const LIST_READS_IN_FLIGHT = 32;

/** After a silent placement, how long listings on that connection skip the consumer. */
export const LIST_BYPASS_MS = 30_000;

const quick = new WeakMap<NatsConnection, Promise<JetStreamManager>>();
const bypassUntil = new WeakMap<NatsConnection, number>();

/**
 * The listing consumer, or null when on a clustered store it was not placed within LIST_TRY_MS:
 * then list subject by subject (`mapInFlight` over the stream's subjects).
 */
export async function addListingConsumer(
  jsm: JetStreamManager,
  nc: NatsConnection | undefined,
  stream: string,
  config: Partial<ConsumerConfig>,
): Promise<ConsumerInfo | null> {
  if (nc === undefined) return jsm.consumers.add(stream, config);
  if (!isClustered(nc)) {
    const info = await jsm.consumers.add(stream, config);
    noteClusterAnswer(nc, info.cluster);
    return info;
  }
  // A peer was silent a moment ago: it likely still is, and the next placement may pick it.
  if ((bypassUntil.get(nc) ?? 0) > Date.now()) return null;
  let bounded = quick.get(nc);
  if (bounded === undefined) {
    bounded = jetstreamManager(nc, { timeout: LIST_TRY_MS, checkAPI: false });
    quick.set(nc, bounded);
  }
  try {
    return await (await bounded).consumers.add(stream, config);
  } catch (err) {
    if (!isSilence(err)) throw err;
    bypassUntil.set(nc, Date.now() + LIST_BYPASS_MS);
    return null;
  }
}

/** `fn` over `items`, at most `limit` at once, results in input order. */
export async function mapInFlight<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  limit = LIST_READS_IN_FLIGHT,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
