/**
 * Typed access to one KV bucket of zod-validated JSON records. Writes validate before they
 * leave, reads validate before they return (a bad stored record is STORE_CORRUPT). Every write
 * is compare-and-set: `create` only when the key is absent (or deleted), `update`/`delete` only
 * at the expected revision; a lost race is `PloyzError('STORE_CONFLICT')`, never an overwrite.
 */
import { JetStreamApiCodes } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import { PloyzError } from '@ployz/types';
import type { z } from 'zod';

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

export function storeError(err: unknown, what: string): PloyzError {
  if (err instanceof PloyzError) return err;
  return new PloyzError(
    'STORE_UNAVAILABLE',
    `${what} failed: NATS JetStream did not answer; check ployz-nats`,
    {
      cause: err,
    },
  );
}

const encoder = new TextEncoder();

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
    return { key, value: this.#decode(key, entry), revision: entry.revision };
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
        throw new PloyzError('STORE_CONFLICT', `${this.bucket}/${key} already exists`, {
          details: { bucket: this.bucket, key },
        });
      }
      throw storeError(err, `creating ${this.bucket}/${key}`);
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
      throw storeError(err, `updating ${this.bucket}/${key}`);
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
      throw storeError(err, `deleting ${this.bucket}/${key}`);
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

  /** Every live record matching the filter, sorted by key. */
  async list(filter = '>'): Promise<Versioned<z.output<S>>[]> {
    const found = await Promise.all((await this.keys(filter)).map((k) => this.getByKey(k)));
    return found.filter((v): v is Versioned<z.output<S>> => v !== null);
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

  #decode(key: string, entry: KvEntry): z.output<S> {
    let raw: unknown;
    try {
      raw = JSON.parse(entry.string());
    } catch (cause) {
      throw new PloyzError('STORE_CORRUPT', `${this.bucket}/${key} is not JSON`, { cause });
    }
    const parsed = this.#schema.safeParse(raw);
    if (!parsed.success) {
      throw new PloyzError('STORE_CORRUPT', `${this.bucket}/${key} does not match its schema`, {
        details: { bucket: this.bucket, key, revision: entry.revision, issues: parsed.error.issues },
      });
    }
    return parsed.data;
  }

  #conflict(key: string, expectedRevision: number): PloyzError {
    return new PloyzError(
      'STORE_CONFLICT',
      `${this.bucket}/${key} changed since revision ${expectedRevision}; read it again and retry`,
      { details: { bucket: this.bucket, key, expectedRevision } },
    );
  }
}
