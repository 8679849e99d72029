/**
 * Store migration: copies every asset of one scope (DESIGN.md §4) from a source JetStream (the
 * standalone R1 store) into a target JetStream (a 3-server cluster) at R3, then verifies it.
 * nats-server 2.9 cannot turn a standalone server's streams into clustered ones (DESIGN.md §9),
 * so promotion 1 → 3 is this copy, never a config flag.
 *
 * The source is read only: no message and no asset config is written there. Reading uses
 * ephemeral ordered consumers (memory, removed when done or after 30 s idle).
 *
 * What is kept:
 * - Plain streams (`cp_deploy_commits_<auth>`, `routing_events_<auth>`): every message in order
 *   with its subject, payload and headers, at the **same sequence number**. Deploy commits keep
 *   their ids (in subject and payload) and their seqs (`StoredCommit.seq`, `list({afterSeq})`);
 *   routing followers resume by seq, so a follower positioned on the old store continues at the
 *   same place (and the new stream's creation time makes it re-snapshot anyway: `stream_reset`).
 *   The commits stream is never trimmed (deny_purge, no limits) so it always starts at 1. A
 *   routing stream trimmed by its retention starts later: 2.9.10 cannot set `first_seq` (2.10+)
 *   and a purge-to-seq on an empty clustered stream corrupts it ("expected sequence does not
 *   match store" on the next publish, also after raising it R1 → R3), so the target is padded
 *   with first_seq-1 filler messages that are purged right after (a normal compaction of a
 *   non-empty stream, `purge({seq})`). Padding costs one small publish per trimmed seq.
 * - KV buckets: every key's latest entry, tombstones included (a `DEL`/`PURGE` marker is copied
 *   as the marker it is), in the order they were written. KV revisions are the target's own: a
 *   revision is a compare-and-set token of one store, and a writer holding an old one gets
 *   `STORE_CONFLICT` (a lease holder `LEASE_LOST`) and re-reads — promotion refuses deploys, so
 *   no deploy lease is held across the switch.
 * - Stream configs are the source's (limits, dedup windows, deny flags, KV settings), with the
 *   replica count given. Headers that steer the publish (`Nats-Msg-Id`, `Nats-Expected-*`) are
 *   not replayed (they were checks against the source's state, not content); message timestamps
 *   are the target's.
 *
 * Order of work: the target is checked (an asset there without this scope's migration marker is
 * `STORE_MIGRATION_TARGET_IN_USE`; leftovers of a failed or killed run are deleted), the marker
 * is written, every stream is created at the requested replicas, filled in order through raft,
 * and waited for until every replica has applied it (probed, see `appliedEverywhere`), then both sides are digested and compared (count, first and
 * last seq, last id, sha256 over every message). Writes that land on the source meanwhile are
 * copied in another round (up to `maxRounds`). Only an equal digest of every asset is success;
 * anything else is `STORE_MIGRATION_FAILED` and the source is exactly as it was. The marker stays
 * on the target until the caller switches over (`finishMigration`).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamConfig,
  type StreamInfo,
  type StreamUpdateConfig,
} from '@nats-io/jetstream';
import { type MsgHdrs, headers as makeHeaders, type NatsConnection } from '@nats-io/transport-node';
import { PloyzError } from '@ployz/types';
import { BUCKET_ASSETS, isStreamNotFound, type Replicas, validateReplicas } from './assets.ts';
import { assetNames, type Scope } from './keys.ts';
import { mapInFlight } from './listing-consumer.ts';

/**
 * JetStream API timeout of a migration: an R3 cluster's stream creates and acknowledged publishes
 * wait on its quorum, which on a loaded machine takes longer than the client's 5 s default (CI
 * saw `timeout` abort a migration that would have passed).
 */
const MIGRATION_API = { timeout: 30_000 };

/** Target streams created at once (each an R3 raft group electing its leader). */
const CREATES_IN_FLIGHT = 4;

export interface AssetRef {
  /** Name of the asset in DESIGN.md §4 (a bucket name or a stream name). */
  asset: string;
  /** The JetStream stream behind it (`KV_<bucket>` for a bucket). */
  stream: string;
  kind: 'kv' | 'stream';
}

/** The assets a migration copies, in copy order. */
export function migrationAssets(scope: Scope): AssetRef[] {
  const names = assetNames(scope);
  return [
    { asset: names.deployCommits, stream: names.deployCommits, kind: 'stream' },
    { asset: names.routingEvents, stream: names.routingEvents, kind: 'stream' },
    ...BUCKET_ASSETS.map((b) => ({ asset: names[b], stream: `KV_${names[b]}`, kind: 'kv' as const })),
  ];
}

export interface AssetDigest extends AssetRef {
  /** Messages held (KV: keys, tombstones included). */
  messages: number;
  /** Of those, KV keys whose latest entry is a value (not a tombstone); streams: = messages. */
  live: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  /** Streams: last token of the last message's subject (the commit id); KV: last written key. */
  lastId: string | null;
  /** sha256 over what is kept: streams (seq, subject, headers, payload); KV (key, op, value) by key. */
  digest: string;
}

export interface MigrationPlan {
  scope: Scope;
  replicas: Replicas;
  assets: AssetDigest[];
  messages: number;
  bytes: number;
}

export interface MigrationProgress {
  asset: string;
  phase: 'copy' | 'replicate' | 'verify';
  copied: number;
  total: number;
}

export interface MigrateOptions {
  source: NatsConnection;
  target: NatsConnection;
  scope: Scope;
  /** Replica count on the target (default 3). */
  replicas?: number;
  /** Aborting stops the copy; the target is left to the next run, the source untouched. */
  signal?: AbortSignal;
  onProgress?: (p: MigrationProgress) => void;
  /** Copy rounds for writes that land on the source during the copy (default 5). */
  maxRounds?: number;
  /** How long the raised replicas may take to become current (default 60 s). */
  replicateTimeoutMs?: number;
}

export interface MigrationReport {
  run: string;
  replicas: Replicas;
  rounds: number;
  /** The verified digests (equal on source and target). */
  assets: AssetDigest[];
  /** Per stream, the last source seq copied (where a catch-up resumes). */
  sourceSeqs: Record<string, number>;
  durationMs: number;
}

/** The target's marker bucket: present while a migration into it has not been switched to. */
export function migrationMarkerBucket(scope: Scope): string {
  return `ployz_migration_${scope.installation}_${scope.authority}`;
}

const MARKER_KEY = 'state';
const FILLER_SUFFIX = '_ployz_migration_filler';
const WINDOW = 512;
const STRIPPED_HEADER = /^nats-(msg-id|expected-)/i;
const encoder = new TextEncoder();

/** Reads the source (digests of every asset) without writing anything: what a promotion moves. */
export async function planMigration(
  source: NatsConnection,
  scope: Scope,
  replicas: number = 3,
): Promise<MigrationPlan> {
  const jsm = await jetstreamManager(source, MIGRATION_API);
  const js = jetstream(source, MIGRATION_API);
  const assets: AssetDigest[] = [];
  for (const ref of migrationAssets(scope)) assets.push(await digestAsset(js, jsm, ref, true));
  return {
    scope,
    replicas: validateReplicas(replicas),
    assets,
    messages: assets.reduce((n, a) => n + a.messages, 0),
    bytes: assets.reduce((n, a) => n + a.bytes, 0),
  };
}

export async function migrateStore(options: MigrateOptions): Promise<MigrationReport> {
  const started = Date.now();
  const replicas = validateReplicas(options.replicas ?? 3);
  const { source, target, scope } = options;
  const progress = options.onProgress ?? (() => {});
  const maxRounds = options.maxRounds ?? 5;
  if (source.info?.server_id !== undefined && source.info.server_id === target.info?.server_id) {
    throw new PloyzError('INVALID_ARGUMENT', 'the migration source and target are the same NATS server', {
      details: { server: source.info.server_name },
    });
  }
  const sjs = jetstream(source, MIGRATION_API);
  const sjsm = await jetstreamManager(source, MIGRATION_API);
  const tjs = jetstream(target, MIGRATION_API);
  const tjsm = await jetstreamManager(target, MIGRATION_API);
  const refs = migrationAssets(scope);
  const run = randomBytes(8).toString('hex');

  try {
    await clearTarget(tjsm, scope, refs);
    await writeMarker(tjs, tjsm, scope, replicas, {
      state: 'copying',
      run,
      started_at: new Date().toISOString(),
    });
    const copied = new Map<string, number>();
    // Created at their final replica count up front (a few raft groups electing at once: all 17
    // together timed out a create on a loaded machine) and filled through raft: raising R1 → R3
    // after the copy leaves followers that report current while still applying their catch-up
    // (measured on 2.9.10), so it is not done.
    await mapInFlight(
      refs,
      async (ref) => {
        const info = await sjsm.streams.info(ref.stream);
        await tjsm.streams.add(targetConfig(info.config, replicas));
      },
      CREATES_IN_FLIGHT,
    );
    for (const ref of refs) {
      checkAborted(options.signal);
      const info = await sjsm.streams.info(ref.stream);
      copied.set(ref.stream, await copyStream(sjs, tjs, tjsm, ref, info, 0, options, progress));
    }
    await waitReplicated(
      tjsm,
      refs,
      replicas,
      options.replicateTimeoutMs ?? 60_000,
      progress,
      options.signal,
    );

    return await converge(
      { sjs, sjsm, tjs, tjsm, scope, refs, options, progress, replicas, run, started },
      copied,
      maxRounds,
    );
  } catch (err) {
    if (err instanceof PloyzError) throw err;
    throw new PloyzError(
      'STORE_MIGRATION_FAILED',
      `store migration failed: ${err instanceof Error ? err.message : String(err)}; the installation stays on the old store (untouched), and a new run starts over`,
      { cause: err, details: { run } },
    );
  }
}

interface Sides {
  sjs: JetStreamClient;
  sjsm: JetStreamManager;
  tjs: JetStreamClient;
  tjsm: JetStreamManager;
  scope: Scope;
  refs: AssetRef[];
  options: Pick<MigrateOptions, 'signal' | 'onProgress'>;
  progress: (p: MigrationProgress) => void;
  replicas: Replicas;
  run: string;
  started: number;
}

/**
 * Verifies every asset (digests on both sides) and copies what differs again, until equal or
 * `maxRounds`; writes the target's marker `verified` when equal. `copied`: per stream, the last
 * source seq already copied (updated in place).
 */
async function converge(
  sides: Sides,
  copied: Map<string, number>,
  maxRounds: number,
): Promise<MigrationReport> {
  const { sjs, sjsm, tjs, tjsm, scope, refs, options, progress, replicas, run, started } = sides;
  for (let round = 1; ; round++) {
    checkAborted(options.signal);
    const mismatched: { ref: AssetRef; source: AssetDigest; target: AssetDigest }[] = [];
    const verified: AssetDigest[] = [];
    for (const ref of refs) {
      progress({ asset: ref.asset, phase: 'verify', copied: 0, total: 0 });
      // A routing stream the source trimmed meanwhile: trim the target to the same start.
      const sInfo = await sjsm.streams.info(ref.stream);
      const tInfo = await tjsm.streams.info(ref.stream);
      if (
        ref.kind === 'stream' &&
        !tInfo.config.deny_purge &&
        sInfo.state.messages > 0 &&
        tInfo.state.first_seq < sInfo.state.first_seq &&
        tInfo.state.last_seq >= sInfo.state.first_seq
      ) {
        await tjsm.streams.purge(ref.stream, { seq: sInfo.state.first_seq });
      }
      const s = await digestAsset(sjs, sjsm, ref, false);
      const t = await digestAsset(tjs, tjsm, ref, false);
      if (sameDigest(s, t)) verified.push(t);
      else mismatched.push({ ref, source: s, target: t });
    }
    if (mismatched.length === 0) {
      await writeMarker(tjs, tjsm, scope, replicas, {
        state: 'verified',
        run,
        started_at: new Date(started).toISOString(),
      });
      return {
        run,
        replicas,
        rounds: round,
        assets: verified,
        sourceSeqs: Object.fromEntries(copied),
        durationMs: Date.now() - started,
      };
    }
    if (round >= maxRounds) {
      throw new PloyzError(
        'STORE_MIGRATION_FAILED',
        `after ${round} rounds the target still differs from the source in ${mismatched
          .map((m) => m.ref.asset)
          .join(
            ', ',
          )} (the source kept changing, or the copy is wrong); the installation stays on the old store — stop writers and run the migration again`,
        {
          details: {
            run,
            mismatched: mismatched.map((m) => ({ asset: m.ref.asset, source: m.source, target: m.target })),
          },
        },
      );
    }
    // Writes landed on the source after the copy: copy what is new and verify again.
    for (const { ref } of mismatched) {
      const info = await sjsm.streams.info(ref.stream);
      const from = copied.get(ref.stream) ?? 0;
      copied.set(ref.stream, await copyStream(sjs, tjs, tjsm, ref, info, from, options, progress));
    }
  }
}

/**
 * Called by the switch-over once the installation uses the target: removes the marker, so the
 * target is a store like any other and a later migration refuses to overwrite it.
 */
export async function finishMigration(target: NatsConnection, scope: Scope): Promise<void> {
  const jsm = await jetstreamManager(target, MIGRATION_API);
  await jsm.streams.delete(`KV_${migrationMarkerBucket(scope)}`).catch((err: unknown) => {
    if (!isStreamNotFound(err)) throw err;
  });
}

/**
 * Seals every asset of `scope` on the source (the old store): from here every write there, from
 * any writer on any machine, is refused by the server (a store call answers STORE_PROMOTING), so
 * the source stops changing and a last `catchUpMigration` round is exact. Sealing cannot be undone
 * (nats-server refuses to unseal): only after the old store's record says `switched`. The
 * promotion record's own bucket is not an asset and stays writable. Idempotent.
 */
export async function freezeSource(source: NatsConnection, scope: Scope): Promise<void> {
  const jsm = await jetstreamManager(source, MIGRATION_API);
  for (const ref of migrationAssets(scope)) {
    const info = await jsm.streams.info(ref.stream);
    if (info.config.sealed) continue;
    await jsm.streams.update(ref.stream, { sealed: true } as Partial<StreamUpdateConfig>);
  }
}

export interface CatchUpOptions {
  source: NatsConnection;
  target: NatsConnection;
  scope: Scope;
  /** The run of the verified migration (kept in the report). */
  run: string;
  replicas?: number;
  /**
   * Per stream, the last source seq the verified copy read (`MigrationReport.sourceSeqs`); a
   * bucket missing here is copied again from its start (latest entry per key wins either way).
   */
  sourceSeqs?: Record<string, number>;
  signal?: AbortSignal;
  onProgress?: (p: MigrationProgress) => void;
}

/**
 * The last round after `freezeSource`: copies into an already verified target what landed on the
 * source since, and verifies again — the writes between the verification and the freeze are not
 * lost. The source no longer changes, so one copy round must end equal (two verification rounds
 * at most); a difference after that is STORE_MIGRATION_FAILED. Plain streams resume at the
 * target's last seq (their seqs are the source's), buckets at `sourceSeqs`.
 */
export async function catchUpMigration(options: CatchUpOptions): Promise<MigrationReport> {
  const started = Date.now();
  const replicas = validateReplicas(options.replicas ?? 3);
  const { source, target, scope, run } = options;
  const progress = options.onProgress ?? (() => {});
  const sjs = jetstream(source, MIGRATION_API);
  const sjsm = await jetstreamManager(source, MIGRATION_API);
  const tjs = jetstream(target, MIGRATION_API);
  const tjsm = await jetstreamManager(target, MIGRATION_API);
  const refs = migrationAssets(scope);
  try {
    const copied = new Map<string, number>();
    for (const ref of refs) {
      const at =
        ref.kind === 'stream'
          ? (await tjsm.streams.info(ref.stream)).state.last_seq
          : (options.sourceSeqs?.[ref.stream] ?? 0);
      copied.set(ref.stream, at);
    }
    return await converge(
      { sjs, sjsm, tjs, tjsm, scope, refs, options, progress, replicas, run, started },
      copied,
      2,
    );
  } catch (err) {
    if (err instanceof PloyzError) throw err;
    throw new PloyzError(
      'STORE_MIGRATION_FAILED',
      `store catch-up failed: ${err instanceof Error ? err.message : String(err)}; the old store is frozen and its record says switched — run the promotion again to finish it`,
      { cause: err, details: { run } },
    );
  }
}

/** Digests one asset (the same function on both sides is what verification compares). */
export async function digestAsset(
  js: JetStreamClient,
  jsm: JetStreamManager,
  ref: AssetRef,
  missingIsEmpty: boolean,
): Promise<AssetDigest> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(ref.stream);
  } catch (err) {
    if (missingIsEmpty && isStreamNotFound(err)) {
      return { ...ref, messages: 0, live: 0, bytes: 0, firstSeq: 0, lastSeq: 0, lastId: null, digest: '' };
    }
    throw err;
  }
  const hash = createHash('sha256');
  let messages = 0;
  let live = 0;
  let lastId: string | null = null;
  if (ref.kind === 'stream') {
    await readStream(js, ref.stream, info, 0, (m) => {
      messages++;
      live++;
      hash.update(`${m.seq}\n${m.subject}\n${headerText(m.headers)}\n`);
      hash.update(m.data);
      hash.update('\n');
      lastId = m.subject.slice(m.subject.lastIndexOf('.') + 1);
    });
  } else {
    // Last entry per key wins (a bucket with history > 1 holds older ones too).
    const latest = new Map<string, { key: string; op: string; data: Uint8Array }>();
    const prefix = `$KV.${ref.asset}.`;
    await readStream(js, ref.stream, info, 0, (m) => {
      const key = m.subject.slice(prefix.length);
      latest.delete(key);
      latest.set(key, { key, op: m.headers?.get('KV-Operation') || 'PUT', data: m.data });
      lastId = key;
    });
    const entries = [...latest.values()];
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const e of entries) {
      messages++;
      if (e.op === 'PUT') live++;
      hash.update(`${e.key}\n${e.op}\n`);
      hash.update(e.data);
      hash.update('\n');
    }
  }
  return {
    ...ref,
    messages,
    live,
    bytes: info.state.bytes,
    firstSeq: ref.kind === 'stream' ? info.state.first_seq : 0,
    lastSeq: ref.kind === 'stream' ? info.state.last_seq : 0,
    lastId,
    digest: hash.digest('hex'),
  };
}

function sameDigest(a: AssetDigest, b: AssetDigest): boolean {
  return (
    a.messages === b.messages &&
    a.live === b.live &&
    a.lastId === b.lastId &&
    a.digest === b.digest &&
    (a.kind === 'kv' || (a.messages === 0 ? true : a.firstSeq === b.firstSeq && a.lastSeq === b.lastSeq))
  );
}

interface RawMsg {
  seq: number;
  subject: string;
  headers: MsgHdrs | undefined;
  data: Uint8Array;
}

/**
 * Calls `fn` for every message with seq > `afterSeq` up to the stream's last seq as of `info`, in
 * order, through an ordered consumer (ephemeral, memory).
 */
async function readStream(
  js: JetStreamClient,
  stream: string,
  info: StreamInfo,
  afterSeq: number,
  fn: (m: RawMsg) => void | Promise<void>,
  signal?: AbortSignal,
): Promise<number> {
  const until = info.state.last_seq;
  if (info.state.messages === 0 || until <= afterSeq) return afterSeq;
  const consumer = await js.consumers.get(
    stream,
    afterSeq > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: afterSeq + 1 }
      : { deliver_policy: DeliverPolicy.All },
  );
  let last = afterSeq;
  try {
    while (last < until) {
      checkAborted(signal);
      const batch = await consumer.fetch({ max_messages: 1000, expires: 5000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        if (m.seq > until) {
          last = until;
          break;
        }
        await fn({ seq: m.seq, subject: m.subject, headers: m.headers, data: m.data });
        last = m.seq;
        if (m.seq >= until || m.info.pending === 0) {
          last = until;
          break;
        }
      }
      if (got === 0) break; // nothing more (the tail was removed meanwhile)
    }
  } finally {
    await consumer.delete().catch(() => {});
  }
  return last;
}

/** Copies source messages after `afterSeq` into the target stream; returns the last source seq read. */
async function copyStream(
  sjs: JetStreamClient,
  tjs: JetStreamClient,
  tjsm: JetStreamManager,
  ref: AssetRef,
  info: StreamInfo,
  afterSeq: number,
  options: Pick<MigrateOptions, 'signal'>,
  progress: (p: MigrationProgress) => void,
): Promise<number> {
  const total = info.state.messages;
  let copied = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: unknown = null;
  const send = (subject: string, data: Uint8Array, hdrs: MsgHdrs | undefined, expectSeq: number | null) => {
    const p = tjs
      .publish(subject, data, hdrs ? { headers: hdrs } : {})
      .then((ack) => {
        if (expectSeq !== null && ack.seq !== expectSeq) {
          throw new Error(`${ref.stream}: message stored at seq ${ack.seq}, expected ${expectSeq}`);
        }
      })
      .catch((err: unknown) => {
        failure ??= err;
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  };
  const drainTo = async (n: number) => {
    while (inFlight.size > n) await Promise.race(inFlight);
    if (failure) throw failure;
  };

  // Plain streams keep their seqs: a stream that starts later is padded first (module comment).
  let nextTargetSeq = ref.kind === 'stream' ? (await tjsm.streams.info(ref.stream)).state.last_seq + 1 : 0;
  const firstSeq = info.state.first_seq;
  const padded = ref.kind === 'stream' && afterSeq === 0 && info.state.messages > 0 && firstSeq > 1;
  if (padded) {
    const subject = fillerSubject(info.config);
    for (let seq = nextTargetSeq; seq < firstSeq; seq++) {
      send(subject, new Uint8Array(), undefined, seq);
      await drainTo(WINDOW);
    }
    nextTargetSeq = firstSeq;
  }

  // A copy that stops (abort, a gap, a refused ack) still waits for what it published: nothing
  // of this run may land on the target after the caller saw it fail (a rerun clears the target).
  const last = await readStream(
    sjs,
    ref.stream,
    info,
    afterSeq,
    async (m) => {
      if (ref.kind === 'stream') {
        if (m.seq !== nextTargetSeq) {
          throw new Error(
            `${ref.stream}: source seq ${m.seq} follows ${nextTargetSeq - 1} (a gap the copy cannot keep)`,
          );
        }
        nextTargetSeq++;
      }
      send(m.subject, m.data, replayHeaders(m.headers), ref.kind === 'stream' ? m.seq : null);
      copied++;
      if (copied % 1000 === 0) progress({ asset: ref.asset, phase: 'copy', copied, total });
      await drainTo(WINDOW);
    },
    options.signal,
  ).catch(async (err: unknown) => {
    await Promise.allSettled([...inFlight]);
    throw err;
  });
  await drainTo(0);
  if (padded) await tjsm.streams.purge(ref.stream, { seq: firstSeq });
  progress({ asset: ref.asset, phase: 'copy', copied, total });
  return last;
}

/** The target config: the source's, at `replicas`, without what only the source has. */
function targetConfig(config: StreamConfig, replicas: number): Partial<StreamConfig> & { name: string } {
  const { sealed: _sealed, placement: _placement, mirror: _mirror, sources: _sources, ...rest } = config;
  return { ...rest, num_replicas: replicas };
}

/** A subject inside the stream's subjects for padding messages (purged before verification). */
function fillerSubject(config: StreamConfig): string {
  const subject = config.subjects?.[0] ?? config.name;
  return subject.endsWith('.>') ? `${subject.slice(0, -2)}.${FILLER_SUFFIX}` : subject;
}

function replayHeaders(h: MsgHdrs | undefined): MsgHdrs | undefined {
  if (!h) return undefined;
  const out = makeHeaders();
  let any = false;
  for (const [k, values] of h) {
    if (STRIPPED_HEADER.test(k)) continue;
    for (const v of values) {
      out.append(k, v);
      any = true;
    }
  }
  return any ? out : undefined;
}

function headerText(h: MsgHdrs | undefined): string {
  if (!h) return '';
  const parts: string[] = [];
  for (const [k, values] of h) if (!STRIPPED_HEADER.test(k)) parts.push(`${k}:${values.join(',')}`);
  return parts.sort().join(';');
}

/** Deletes this scope's assets (and marker) from the target, unless the target is in use. */
async function clearTarget(jsm: JetStreamManager, scope: Scope, refs: AssetRef[]): Promise<void> {
  const marker = `KV_${migrationMarkerBucket(scope)}`;
  const hasMarker = await exists(jsm, marker);
  const present: string[] = [];
  for (const ref of refs) if (await exists(jsm, ref.stream)) present.push(ref.asset);
  if (present.length > 0 && !hasMarker) {
    throw new PloyzError(
      'STORE_MIGRATION_TARGET_IN_USE',
      `the target JetStream already holds ${present.join(', ')} and no unfinished migration: it may be a store in use; migrate into an empty cluster (or delete those assets there yourself)`,
      { details: { assets: present } },
    );
  }
  await mapInFlight(
    refs,
    (ref) =>
      jsm.streams.delete(ref.stream).then(
        () => undefined,
        (err: unknown) => {
          if (!isStreamNotFound(err)) throw err;
        },
      ),
    CREATES_IN_FLIGHT,
  );
}

async function writeMarker(
  js: JetStreamClient,
  jsm: JetStreamManager,
  scope: Scope,
  replicas: number,
  value: { state: 'copying' | 'verified'; run: string; started_at: string },
): Promise<void> {
  const bucket = migrationMarkerBucket(scope);
  if (!(await exists(jsm, `KV_${bucket}`))) {
    await jsm.streams.add({
      name: `KV_${bucket}`,
      subjects: [`$KV.${bucket}.>`],
      max_msgs_per_subject: 1,
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
      num_replicas: replicas,
      discard: DiscardPolicy.New,
    });
  }
  await js.publish(`$KV.${bucket}.${MARKER_KEY}`, encoder.encode(JSON.stringify(value)));
}

async function exists(jsm: JetStreamManager, stream: string): Promise<boolean> {
  try {
    await jsm.streams.info(stream);
    return true;
  } catch (err) {
    if (isStreamNotFound(err)) return false;
    throw err;
  }
}

async function waitReplicated(
  jsm: JetStreamManager,
  refs: AssetRef[],
  replicas: number,
  timeoutMs: number,
  progress: (p: MigrationProgress) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const ref of refs) {
    progress({ asset: ref.asset, phase: 'replicate', copied: 0, total: replicas });
    for (;;) {
      checkAborted(signal);
      const info = await jsm.streams.info(ref.stream);
      const peers = info.cluster?.replicas ?? [];
      const current = peers.filter((p) => p.current && !p.offline && !p.lag).length;
      const reached = replicas === 1 || (info.cluster?.leader && current >= replicas - 1);
      if (reached && (replicas === 1 || (await appliedEverywhere(jsm, ref.stream, info, replicas)))) break;
      if (Date.now() > deadline) {
        throw new PloyzError(
          'STORE_MIGRATION_FAILED',
          `${ref.asset} did not reach ${replicas} current replicas in ${timeoutMs} ms (${current + 1} so far); are all target servers up and routed?`,
          { details: { asset: ref.asset, leader: info.cluster?.leader ?? null, replicas: peers } },
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Whether every replica has applied the whole stream. A replica the leader reports as current
 * (lag 0) may still be applying its catch-up, and an ephemeral consumer placed there starts at
 * that replica's state (a start seq past its end is clamped back to its first seq). The only
 * view of a replica's own state is a consumer placed on it, so probe with ephemeral consumers
 * (placement is random) until each replica has answered with the leader's message count.
 */
async function appliedEverywhere(
  jsm: JetStreamManager,
  stream: string,
  info: StreamInfo,
  replicas: number,
): Promise<boolean> {
  const ok = new Set<string>();
  for (let probe = 0; probe < replicas * 8 && ok.size < replicas; probe++) {
    const ci = await jsm.consumers.add(stream, {
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      mem_storage: true,
      inactive_threshold: 10_000 * 1_000_000,
    });
    await jsm.consumers.delete(stream, ci.name).catch(() => {});
    const where = ci.cluster?.leader ?? '';
    if (ci.num_pending !== info.state.messages) {
      return false;
    }
    ok.add(where);
  }
  return ok.size >= replicas;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new PloyzError(
      'STORE_MIGRATION_FAILED',
      'the store migration was aborted; the source is untouched',
      {
        cause: signal.reason,
      },
    );
  }
}
