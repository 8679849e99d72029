/**
 * Routing events: ordered append to `routing_events_<auth>` and the `RoutingFeed` the routing
 * follower (gateway, DNS) reads.
 *
 * Consistency of `snapshot()`. Writers follow one rule: write the KV record first, then append
 * the routing event that carries the full record (`appendAfterWrite` does both). `snapshot()`
 * reads the stream's last sequence S first and the KV buckets after. Every event ≤ S was
 * appended after its KV write, so its effect is already in what we read. Some KV values may be
 * newer than S (written after we read S); their events have seq > S and are delivered by
 * `follow(S)`. Events carry whole records and are applied as upsert/remove by id, so applying
 * an event whose effect is already visible is harmless, and after the last event for a key has
 * been applied the projection equals the KV value. Hence snapshot(S) + events > S converges to
 * the durable state, and nothing ≤ S is lost.
 *
 * `follow(fromSeq)` yields events with seq > fromSeq strictly in order and throws
 * `ROUTING_FEED_BROKEN` (details.reason: gap | stream_reset | consumer_lost | disconnected) when
 * it cannot continue without a rebuild; it never silently skips.
 */
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type InstanceRecord,
  type MachineRecord,
  PloyzError,
  type ReleaseRecord,
  type RevisionRecord,
  RoutingEvent,
  type RoutingFeed,
  type RoutingSnapshot,
  type SequencedRoutingEvent,
} from '@ployz/types';
import type { z } from 'zod';
import { reported } from './diagnostics.ts';
import { storeError, storeFailure } from './quorum.ts';

export type FeedBreak = 'gap' | 'stream_reset' | 'consumer_lost' | 'disconnected';

export function feedBroken(reason: FeedBreak, message: string, details: Record<string, unknown> = {}) {
  return new PloyzError('ROUTING_FEED_BROKEN', `${message}; rebuild the projection from a new snapshot`, {
    details: { reason, ...details },
  });
}

/** Lists every live record of one kind (a RecordBucket's `list`). */
interface Lister<T> {
  list(): Promise<{ value: T }[]>;
}

export interface SnapshotSources {
  machines: Lister<MachineRecord>;
  revisions: Lister<RevisionRecord>;
  releases: Lister<ReleaseRecord>;
  instances: Lister<InstanceRecord>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const BREAKING_STATUS = new Set([
  'heartbeats_missed',
  'consumer_not_found',
  'consumer_deleted',
  'stream_not_found',
  'ordered_consumer_recreated',
  'reset',
  'no_responders',
]);

export class RoutingEvents implements RoutingFeed {
  readonly stream: string;
  readonly subject: string;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #sources: SnapshotSources;
  /** Creation time of the stream the last snapshot came from: a recreated stream is a reset. */
  #streamCreated: string | null = null;

  constructor(options: {
    nc: NatsConnection;
    js: JetStreamClient;
    jsm: JetStreamManager;
    stream: string;
    subject: string;
    sources: SnapshotSources;
  }) {
    this.#nc = options.nc;
    this.#js = options.js;
    this.#jsm = options.jsm;
    this.stream = options.stream;
    this.subject = options.subject;
    this.#sources = options.sources;
  }

  /** Appends one event; returns its stream sequence. */
  async append(input: z.input<typeof RoutingEvent>): Promise<number> {
    const [seq] = await this.appendAll([input]);
    return seq as number;
  }

  /**
   * Appends events in the given order; returns their stream sequences. Every event is validated
   * before any is sent, then all are published back to back without waiting for each ack (one
   * connection delivers them in order and the stream stores them in arrival order), so N events
   * cost about one round trip, not N. On a failure the ones before it may be stored: appends are
   * idempotent for the engine, which re-publishes a commit's events whole.
   */
  async appendAll(inputs: readonly z.input<typeof RoutingEvent>[]): Promise<number[]> {
    const events = inputs.map((input) => {
      const parsed = RoutingEvent.safeParse(input);
      if (!parsed.success) {
        throw new PloyzError('INVALID_ARGUMENT', 'routing event does not validate', {
          details: { issues: parsed.error.issues },
        });
      }
      return parsed.data;
    });
    // Each publish is sent synchronously inside its call: the order of the calls is the order on the wire.
    const acks = events.map((e) =>
      this.#js.publish(this.subject, encoder.encode(JSON.stringify(e))).then(
        (ack) => ack.seq,
        async (err: unknown) => {
          throw await storeFailure(this.#nc, err, `appending routing event ${e.type}`);
        },
      ),
    );
    return Promise.all(acks);
  }

  /** The writer's rule in one call: do the KV write, then append the event describing it. */
  async appendAfterWrite<T>(
    write: () => Promise<T>,
    event: (written: T) => z.input<typeof RoutingEvent>,
  ): Promise<{ written: T; seq: number }> {
    const written = await write();
    return { written, seq: await this.append(event(written)) };
  }

  async lastSeq(): Promise<number | null> {
    try {
      return (await this.#jsm.streams.info(this.stream)).state.last_seq;
    } catch {
      return null;
    }
  }

  async snapshot(): Promise<RoutingSnapshot> {
    let seq: number;
    try {
      const info = await this.#jsm.streams.info(this.stream);
      seq = info.state.last_seq;
      this.#streamCreated = info.created;
    } catch (err) {
      throw storeError(err, 'reading the routing event stream');
    }
    const [machines, revisions, releases, instances] = await Promise.all([
      this.#sources.machines.list(),
      this.#sources.revisions.list(),
      this.#sources.releases.list(),
      this.#sources.instances.list(),
    ]);
    const values = <T>(xs: { value: T }[]) => xs.map((x) => x.value);
    return {
      seq,
      machines: values(machines),
      revisions: values(revisions),
      releases: values(releases),
      instances: values(instances),
    };
  }

  async *follow(fromSeq: number, signal: AbortSignal): AsyncGenerator<SequencedRoutingEvent> {
    if (signal.aborted) return;
    let state: { first_seq: number; last_seq: number };
    try {
      const info = await this.#jsm.streams.info(this.stream);
      state = info.state;
      if (this.#streamCreated !== null && info.created !== this.#streamCreated) {
        throw feedBroken('stream_reset', 'the routing stream was deleted and created again', {
          created: info.created,
          snapshot_of: this.#streamCreated,
        });
      }
    } catch (err) {
      if (err instanceof PloyzError) throw err;
      throw storeError(err, 'reading the routing event stream');
    }
    if (state.last_seq < fromSeq) {
      throw feedBroken('stream_reset', `the routing stream ends at ${state.last_seq}, before ${fromSeq}`, {
        fromSeq,
        lastSeq: state.last_seq,
      });
    }
    if (state.last_seq > fromSeq && state.first_seq > fromSeq + 1) {
      throw feedBroken('gap', `routing events ${fromSeq + 1}..${state.first_seq - 1} are gone`, {
        fromSeq,
        firstSeq: state.first_seq,
      });
    }

    let broken: PloyzError | null = null;
    let messages: ConsumerMessages | null = null;
    const stop = (why: PloyzError | null) => {
      if (why && !broken) broken = why;
      messages?.stop();
    };
    const status = this.#nc.status();
    void (async () => {
      for await (const s of status) {
        if (s.type === 'disconnect' || s.type === 'reconnect' || s.type === 'close') {
          stop(feedBroken('disconnected', `the NATS connection saw '${s.type}'`, { event: s.type }));
        }
      }
    })().catch(() => {});
    const onAbort = () => stop(null);
    signal.addEventListener('abort', onAbort, { once: true });

    try {
      const consumer = await this.#js.consumers.get(this.stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq + 1,
      });
      messages = await consumer.consume({ max_messages: 256, idle_heartbeat: 2000 });
      const consumed = messages;
      void (async () => {
        for await (const s of consumed.status()) {
          if (BREAKING_STATUS.has(s.type)) {
            stop(feedBroken('consumer_lost', `the routing consumer reported '${s.type}'`, { event: s.type }));
          }
        }
      })().catch(() => {});
      if (signal.aborted || broken) consumed.stop();

      let expected = fromSeq + 1;
      for await (const m of consumed) {
        if (broken || signal.aborted) break;
        if (m.seq !== expected) {
          throw feedBroken('gap', `expected routing event ${expected}, got ${m.seq}`, {
            expected,
            got: m.seq,
          });
        }
        const parsed = RoutingEvent.safeParse(JSON.parse(decoder.decode(m.data)));
        if (!parsed.success) {
          throw reported(
            new PloyzError('STORE_CORRUPT', `routing event ${m.seq} does not match its schema`, {
              details: { seq: m.seq, issues: parsed.error.issues },
            }),
          );
        }
        expected++;
        yield { seq: m.seq, event: parsed.data };
      }
      if (broken) throw broken;
      if (!signal.aborted) throw feedBroken('consumer_lost', 'the routing consumer ended');
    } catch (err) {
      if (err instanceof PloyzError) throw err;
      if (broken) throw broken;
      throw feedBroken('consumer_lost', `the routing consumer failed: ${String(err)}`);
    } finally {
      signal.removeEventListener('abort', onAbort);
      // status() is a QueuedIterator at runtime; stopping it unregisters the listener.
      (status as Partial<{ stop(): void }>).stop?.();
      messages?.stop();
    }
  }
}
