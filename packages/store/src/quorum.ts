/**
 * Telling a replicated store without quorum (STORE_NO_QUORUM) from one that cannot be reached
 * (STORE_UNAVAILABLE).
 *
 * Measured on nats-server 2.9.10, a 3-server cluster with two servers killed, client connected to
 * the survivor: a publish to a stream without a leader gets `no responders` at once (commits) or
 * no answer until the client's timeout (KV writes); JetStream API calls answer at once with
 * `503 / 10008 JetStream system temporarily unavailable` (no meta leader). So a 10008 is no
 * quorum outright; a timeout or no-responders while connected is followed by one `$JS.API.INFO`
 * probe, and its 10008 says the same. Nothing is half-written: each store write is one publish,
 * stored whole or not at all; see `noQuorum` for the one case whose outcome is not known.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { PloyzError } from '@ployz/types';

const NO_META_LEADER = 10008;
/** JSStreamSealedErr: "invalid operation on sealed stream". */
const STREAM_SEALED = 10109;
const PROBE_TIMEOUT_MS = 1000;

function apiCode(err: unknown): number | undefined {
  const e = err as { api_error?: { err_code?: number }; err_code?: number } | null;
  return e?.api_error?.err_code ?? e?.err_code;
}

/** A JetStream answer that by itself means "no quorum" (10008, temporarily unavailable). */
export function isNoQuorumAnswer(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return apiCode(err) === NO_META_LEADER || /jetstream system temporarily unavailable/i.test(err.message);
}

function isTimeout(err: unknown): boolean {
  return err instanceof Error && (err.name === 'TimeoutError' || /timeout/i.test(err.message));
}

/** A timeout or no responders: nobody answered (a leaderless stream, a dead peer or link). */
export function isSilence(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.name === 'TimeoutError' || /timeout|no responders/i.test(err.message);
}

/**
 * `outcome` is `not_written` when no stream leader took the write (10008, no responders) and
 * `unknown` after a timeout: the survivor may have been the leader and logged the entry, and
 * when a majority returns and re-elects it the write is applied — whole (each store write is one
 * message), never partly. Measured here: a timed-out KV create showed up after the restart.
 * Commits are safe to retry (identical = no-op); a record create/CAS re-reads first.
 */
export function noQuorum(
  what: string,
  nc: NatsConnection | undefined,
  cause: unknown,
  outcome: 'not_written' | 'unknown' | 'read',
): PloyzError {
  const effect =
    outcome === 'not_written'
      ? 'nothing was written'
      : outcome === 'unknown'
        ? 'the write was not confirmed and may still be applied, whole, once a majority is back (re-read before retrying)'
        : 'nothing was read';
  return new PloyzError(
    'STORE_NO_QUORUM',
    `${what} failed: the store's JetStream cluster has no quorum (fewer than 2 of 3 storage servers are up), so ${effect}; bring the stopped storage machines' ployz-nats back — the store works again by itself once a majority is up`,
    {
      cause,
      details: { outcome, server: nc?.info?.server_name ?? null, cluster: nc?.info?.cluster ?? null },
    },
  );
}

/**
 * Whether JetStream has no quorum as seen from this connection's (clustered) server: it answers
 * 10008 (no meta leader), or it does not answer at all within the probe while the connection is
 * open — just after a majority died, the survivor still forwards to the lost leader until its
 * election timeout, and a cluster whose API is silent cannot take writes either.
 */
export async function hasNoQuorum(nc: NatsConnection): Promise<boolean> {
  if (nc.isClosed() || !isClustered(nc)) return false;
  const meta = await probeMetaLeader(nc);
  return meta === 'absent' || (meta === 'silent' && !nc.isClosed());
}

/** One `$JS.API.INFO` within PROBE_TIMEOUT_MS: 10008 (no meta leader), any other answer, or none. */
async function probeMetaLeader(nc: NatsConnection): Promise<'absent' | 'present' | 'silent'> {
  try {
    const reply = await nc.request('$JS.API.INFO', undefined, { timeout: PROBE_TIMEOUT_MS });
    const body = reply.json() as { error?: { err_code?: number } };
    return body.error?.err_code === NO_META_LEADER ? 'absent' : 'present';
  } catch {
    return 'silent';
  }
}

/**
 * Connections whose own server is a leaf of a clustered store (ployz-nats after a promotion): their
 * `info.cluster` is empty, so the owner says so (`reachesClusterThroughLeaf`). Asked at failure
 * time, as a machine switches over without reconnecting.
 */
const throughLeaf = new WeakMap<NatsConnection, () => boolean>();

/**
 * Declares that `nc`'s server reaches the store as a leaf of a JetStream cluster whenever
 * `isLeaf()` says so: a silent write and a silent probe then mean no quorum, as on a member.
 */
export function reachesClusterThroughLeaf(nc: NatsConnection, isLeaf: () => boolean): void {
  throughLeaf.set(nc, isLeaf);
}

/**
 * Connections that were seen answering from a clustered JetStream (a consumer's `cluster.name`):
 * the gateway and DNS reach the store through their machine's ployz-nats and are told nothing.
 */
const seenClustered = new WeakSet<NatsConnection>();

/** Records that `nc` got an answer naming a JetStream cluster (`cluster.name`). */
export function noteClusterAnswer(nc: NatsConnection, cluster: { name?: string } | undefined): void {
  if (cluster?.name) seenClustered.add(nc);
}

/** Whether `nc` reaches a clustered store: its server is a member, or a leaf of the members. */
export function isClustered(nc: NatsConnection): boolean {
  return nc.info?.cluster !== undefined || seenClustered.has(nc) || throughLeaf.get(nc)?.() === true;
}

/**
 * Whether the JetStream behind this connection answers 10008 (no meta leader). Through a leaf
 * (every machine's ployz-nats after a promotion: the connection's own server has no cluster) this
 * is the only sign of a lost quorum: a silence can as well be a leaf link that is down.
 */
async function answersNoMetaLeader(nc: NatsConnection): Promise<boolean> {
  return (await probeMetaLeader(nc)) === 'absent';
}

/**
 * A write refused because the asset is sealed: the store was promoted and this is the old one
 * (`freezeSource`); the writer's machine moves to the new store by itself.
 */
export function isSealedAnswer(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return apiCode(err) === STREAM_SEALED || code === STREAM_SEALED || /sealed stream/i.test(err.message);
}

function movedAway(what: string, cause: unknown): PloyzError {
  return new PloyzError(
    'STORE_PROMOTING',
    `${what} refused: this store was promoted and is read only now (the old store); this machine switches over to the new store by itself — retry then`,
    { cause, details: { phase: 'switched', sealed: true } },
  );
}

/** STORE_UNAVAILABLE for a failed store call (STORE_NO_QUORUM when the answer says so). */
export function storeError(err: unknown, what: string): PloyzError {
  if (err instanceof PloyzError) return err;
  if (isSealedAnswer(err)) return movedAway(what, err);
  if (isNoQuorumAnswer(err)) return noQuorum(what, undefined, err, 'read');
  return new PloyzError(
    'STORE_UNAVAILABLE',
    `${what} failed: NATS JetStream did not answer; check ployz-nats`,
    {
      cause: err,
    },
  );
}

/** The PloyzError for a failed store call: STORE_NO_QUORUM when that is the cause. */
export async function storeFailure(
  nc: NatsConnection | undefined,
  err: unknown,
  what: string,
  /**
   * The call may have retried internally and lost a first attempt's answer (a KV create reads
   * back after its put fails): a silence is then never `not_written`.
   */
  options: { retried?: boolean } = {},
): Promise<PloyzError> {
  if (err instanceof PloyzError) return err;
  if (isSealedAnswer(err)) return movedAway(what, err);
  if (isNoQuorumAnswer(err)) return noQuorum(what, nc, err, options.retried ? 'unknown' : 'not_written');
  // A clustered store that stays silent (or has no stream leader to respond) cannot commit:
  // that is no quorum whatever the meta group says yet (a survivor that led it still answers
  // the account info until its election timeout).
  if (nc && !nc.isClosed() && isClustered(nc) && isSilence(err)) {
    const failure = noQuorum(what, nc, err, options.retried || isTimeout(err) ? 'unknown' : 'not_written');
    if (failure.details) failure.details.meta_leader = (await hasNoQuorum(nc)) ? 'absent' : 'present';
    return failure;
  }
  if (nc && !nc.isClosed() && isSilence(err) && (await answersNoMetaLeader(nc))) {
    const failure = noQuorum(what, nc, err, options.retried || isTimeout(err) ? 'unknown' : 'not_written');
    if (failure.details) failure.details.meta_leader = 'absent';
    return failure;
  }
  return storeError(err, what);
}

/** The connection under a JetStream client or a KV (both keep it as `nc` / `js.nc`). */
export function connectionOf(handle: unknown): NatsConnection | undefined {
  const h = handle as { nc?: NatsConnection; js?: { nc?: NatsConnection } } | null;
  return h?.nc ?? h?.js?.nc;
}
