/**
 * Typed access to one KV bucket of zod-validated JSON records. Writes validate before they
 * leave, reads validate before they return (a bad stored record is STORE_CORRUPT). Every write
 * is compare-and-set: `create` only when the key is absent (or deleted), `update`/`delete` only
 * at the expected revision; a lost race is `PloyzError('STORE_CONFLICT')`, never an overwrite.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { PloyzError } from '@ployz/types';
import type { z } from 'zod';
import { reported } from './diagnostics.ts';
import { addListingConsumer, mapInFlight } from './listing-consumer.ts';
import { connectionOf, storeError, storeFailure } from './quorum.ts';

export interface Versioned<T> {
  key: string;
  value: T;
  /** The KV revision to pass as `expectedRevision` to the next write. */
  revision: number;
}

/**
 * A refused compare-and-set. Duck-typed on purpose: @nats-io/kv carries its own copy of
 * @nats-io/jetstream, so `instanceof JetStreamApiError` is not reliable across the two.
 */
export function isWrongLastSequence(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  return (
    code === JetStreamApiCodes.StreamWrongLastSequence ||
    code === JetStreamApiCodes.StreamWrongLastSequenceUnknown ||
    /wrong last sequence/i.test(err.message)
  );
}

export { storeError } from './quorum.ts';

const encoder = new TextEncoder();

interface StreamInfoLike {
  state: { subjects?: Record<string, number> };
}

export class RecordBucket<S extends z.ZodType, P extends string[]> {
  readonly bucket: string;
  readonly #kv: KV;
  readonly #schema: S;
  readonly #keyOfParts: (...parts: P) => string;
  readonly #keyOfRecord: (record: z.output<S>) => string;

  constructor(options: {
    bucket: string;
    kv: KV;
    schema: S;
    keyOfParts: (...parts: P) => string;
    keyOfRecord: (record: z.output<S>) => string;
  }) {
    this.bucket = options.bucket;
    this.#kv = options.kv;
    this.#schema = options.schema;
    this.#keyOfParts = options.keyOfParts;
    this.#keyOfRecord = options.keyOfRecord;
  }

  /** The KV key for these parts (escaped tokens). */
  key(...parts: P): string {
    return this.#keyOfParts(...parts);
  }

  keyOf(record: z.input<S>): string {
    return this.#keyOfRecord(this.#validate(record));
  }

  get(...parts: P): Promise<Versioned<z.output<S>> | null> {
    return this.getByKey(this.#keyOfParts(...parts));
  }

  async getByKey(key: string): Promise<Versioned<z.output<S>> | null> {
    let entry: KvEntry | null;
    try {
      entry = await this.#kv.get(key);
    } catch (err) {
      throw storeError(err, `reading ${this.bucket}/${key}`);
    }
    if (entry?.operation !== 'PUT') return null;
    return { key, value: this.#decode(key, entry.string(), entry.revision), revision: entry.revision };
  }

  /** Creates the record; STORE_CONFLICT when a record already exists under its key. */
  async create(record: z.input<S>): Promise<Versioned<z.output<S>>> {
    const value = this.#validate(record);
    const key = this.#keyOfRecord(value);
    try {
      const revision = await this.#kv.create(key, encoder.encode(JSON.stringify(value)));
      return { key, value, revision };
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw reported(
          new PloyzError('STORE_CONFLICT', `${this.bucket}/${key} already exists`, {
            details: { bucket: this.bucket, key },
          }),
        );
      }
      throw await storeFailure(connectionOf(this.#kv), err, `creating ${this.bucket}/${key}`, {
        retried: true,
      });
    }
  }

  /** Replaces the record if it is still at `expectedRevision`; STORE_CONFLICT otherwise. */
  async update(record: z.input<S>, expectedRevision: number): Promise<Versioned<z.output<S>>> {
    const value = this.#validate(record);
    const key = this.#keyOfRecord(value);
    if (!Number.isInteger(expectedRevision) || expectedRevision <= 0) {
      throw new PloyzError('INVALID_ARGUMENT', `update of ${this.bucket}/${key} needs the revision it read`);
    }
    try {
      const revision = await this.#kv.update(key, encoder.encode(JSON.stringify(value)), expectedRevision);
      return { key, value, revision };
    } catch (err) {
      if (isWrongLastSequence(err)) throw this.#conflict(key, expectedRevision);
      throw await storeFailure(connectionOf(this.#kv), err, `updating ${this.bucket}/${key}`, {
        retried: true,
      });
    }
  }

  /**
   * The revision of `key`'s last write once every write proposed before this call is applied:
   * first an unconditional put of `fence` (another key) — the stream leader acknowledges it only
   * after applying everything ahead of it in the raft log — then the leader's last entry of `key`
   * (these buckets are bound without direct gets, so no replica answers in the leader's place).
   * Null when the key's last operation is a delete. See ADR 0003: nats-server 2.9 at R3 can
   * acknowledge two compare-and-set writes made against the same revision.
   */
  async lastRevisionAfterFence(key: string, fence: z.input<S>): Promise<number | null> {
    const value = this.#validate(fence);
    const fenceKey = this.#keyOfRecord(value);
    try {
      await this.#kv.put(fenceKey, encoder.encode(JSON.stringify(value)));
      const entry = await this.#kv.get(key);
      return entry?.operation === 'PUT' ? entry.revision : null;
    } catch (err) {
      throw await storeFailure(connectionOf(this.#kv), err, `confirming ${this.bucket}/${key}`, {
        retried: true,
      });
    }
  }

  /** `create` when `expectedRevision` is null, else `update`. */
  save(record: z.input<S>, expectedRevision: number | null): Promise<Versioned<z.output<S>>> {
    return expectedRevision === null ? this.create(record) : this.update(record, expectedRevision);
  }

  /** Deletes the record if it is still at `expectedRevision`; STORE_CONFLICT otherwise. */
  async delete(key: string, expectedRevision: number): Promise<void> {
    try {
      await this.#kv.delete(key, { previousSeq: expectedRevision });
    } catch (err) {
      if (isWrongLastSequence(err)) throw this.#conflict(key, expectedRevision);
      throw await storeFailure(connectionOf(this.#kv), err, `deleting ${this.bucket}/${key}`, {
        retried: true,
      });
    }
  }

  /**
   * Deletes whatever is current at `parts`, re-reading and retrying on STORE_CONFLICT (a
   * concurrent writer, e.g. the facts loop marking the stopping container), at most `attempts`
   * times. A no-op when nothing is there.
   */
  async discard(parts: P, attempts = 5): Promise<void> {
    for (let i = 1; ; i++) {
      const current = await this.get(...parts);
      if (current === null) return;
      try {
        await this.delete(current.key, current.revision);
        return;
      } catch (err) {
        if (i >= attempts || !(err instanceof PloyzError) || err.code !== 'STORE_CONFLICT') throw err;
      }
    }
  }

  /**
   * Read-modify-write under CAS. `change` gets the current value (or null) and returns the
   * next value, or `undefined` to leave it. Retries only on STORE_CONFLICT, at most `attempts`
   * times, re-reading each time, then throws the conflict.
   */
  async modify(
    parts: P,
    change: (current: z.output<S> | null) => z.input<S> | undefined,
    attempts = 5,
  ): Promise<Versioned<z.output<S>> | null> {
    for (let i = 1; ; i++) {
      const current = await this.get(...parts);
      const next = change(current?.value ?? null);
      if (next === undefined) return current;
      try {
        return await this.save(next, current?.revision ?? null);
      } catch (err) {
        if (i >= attempts || !(err instanceof PloyzError) || err.code !== 'STORE_CONFLICT') throw err;
      }
    }
  }

  /**
   * Every key with a stored message, from the stream's subject state: one request (paged by the
   * client past the server's page size) instead of a consumer delivering one message per key.
   * Deleted or purged keys may be included (their tombstone is a message): a caller reads the
   * records it shows and skips the missing ones. For large buckets (10,000 deploy statuses:
   * `deploy ls` lists the keys to page newest first).
   */
  async storedKeys(): Promise<string[]> {
    const kv = this.#kv as KV & {
      jsm?: { streams: { info(stream: string, opts: { subjects_filter: string }): Promise<StreamInfoLike> } };
      stream?: string;
    };
    if (kv.jsm === undefined || kv.stream === undefined) return this.keys();
    const prefix = `$KV.${this.bucket}.`;
    try {
      const info = await kv.jsm.streams.info(kv.stream, { subjects_filter: `${prefix}>` });
      return Object.keys(info.state.subjects ?? {})
        .filter((subject) => subject.startsWith(prefix))
        .map((subject) => subject.slice(prefix.length))
        .sort();
    } catch (err) {
      throw storeError(err, `listing ${this.bucket}`);
    }
  }

  /** Keys matching a filter (`>` = all; `ns.>` = one namespace…), deleted keys excluded. */
  async keys(filter = '>'): Promise<string[]> {
    try {
      const iter = await this.#kv.keys(filter);
      const out: string[] = [];
      for await (const k of iter) out.push(k);
      return out.sort();
    } catch (err) {
      throw storeError(err, `listing ${this.bucket}`);
    }
  }

  /** `list` without a consumer: the stored subjects from the stream's leader, then each key. */
  async #listByKeys(
    jsm: JetStreamManager,
    stream: string,
    subjects: string,
  ): Promise<Versioned<z.output<S>>[]> {
    const prefix = `$KV.${this.bucket}.`;
    const info = await jsm.streams.info(stream, { subjects_filter: subjects });
    const keys = Object.keys(info.state.subjects ?? {})
      .filter((subject) => subject.startsWith(prefix))
      .map((subject) => subject.slice(prefix.length))
      .sort();
    const found = await mapInFlight(keys, (k) => this.getByKey(k));
    return found.filter((v): v is Versioned<z.output<S>> => v !== null);
  }

  /**
   * Every live record matching the filter, sorted by key. One ephemeral consumer delivers the
   * last message of every matching key (values included), so 200 records cost a few round trips,
   * not one read each; deleted keys (their tombstone is the last message) are skipped.
   */
  async list(filter = '>'): Promise<Versioned<z.output<S>>[]> {
    const kv = this.#kv as KV & { js?: JetStreamClient; jsm?: JetStreamManager; stream?: string };
    if (kv.js === undefined || kv.jsm === undefined || kv.stream === undefined) {
      const found = await Promise.all((await this.keys(filter)).map((k) => this.getByKey(k)));
      return found.filter((v): v is Versioned<z.output<S>> => v !== null);
    }
    const { js, jsm, stream } = kv;
    const prefix = `$KV.${this.bucket}.`;
    let name: string | null = null;
    try {
      const info = await addListingConsumer(jsm, connectionOf(this.#kv), stream, {
        filter_subject: `${prefix}${filter}`,
        deliver_policy: DeliverPolicy.LastPerSubject,
        ack_policy: AckPolicy.None,
        inactive_threshold: 30_000 * 1_000_000,
        mem_storage: true,
      });
      if (info === null) return await this.#listByKeys(jsm, stream, `${prefix}${filter}`);
      name = info.name;
      const out: Versioned<z.output<S>>[] = [];
      let pending = info.num_pending;
      if (pending === 0) return out;
      const consumer = await js.consumers.get(stream, name);
      while (pending > 0) {
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: pending, expires: 5000 })) {
          got++;
          pending = m.info.pending;
          const op = m.headers?.get('KV-Operation');
          if (op !== 'DEL' && op !== 'PURGE') {
            const key = m.subject.slice(prefix.length);
            out.push({ key, value: this.#decode(key, m.string(), m.seq), revision: m.seq });
          }
          if (pending === 0) break;
        }
        if (got === 0) break; // nothing arrived before `expires`: return what we have
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    } catch (err) {
      throw storeError(err, `listing ${this.bucket}`);
    } finally {
      // Not waited for: the consumer also lapses on its own (inactive_threshold).
      if (name !== null) void jsm.consumers.delete(stream, name).catch(() => {});
    }
  }

  #validate(record: z.input<S>): z.output<S> {
    const parsed = this.#schema.safeParse(record);
    if (!parsed.success) {
      throw new PloyzError('INVALID_ARGUMENT', `record for ${this.bucket} does not validate`, {
        details: { bucket: this.bucket, issues: parsed.error.issues },
      });
    }
    return parsed.data;
  }

  #decode(key: string, text: string, revision: number): z.output<S> {
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw reported(new PloyzError('STORE_CORRUPT', `${this.bucket}/${key} is not JSON`, { cause }));
    }
    const parsed = this.#schema.safeParse(raw);
    if (!parsed.success) {
      throw reported(
        new PloyzError('STORE_CORRUPT', `${this.bucket}/${key} does not match its schema`, {
          details: { bucket: this.bucket, key, revision, issues: parsed.error.issues },
        }),
      );
    }
    return parsed.data;
  }

  #conflict(key: string, expectedRevision: number): PloyzError {
    return reported(
      new PloyzError(
        'STORE_CONFLICT',
        `${this.bucket}/${key} changed since revision ${expectedRevision}; read it again and retry`,
        { details: { bucket: this.bucket, key, expectedRevision } },
      ),
    );
  }
}
