/**
 * Deploy commits: an append-only stream, one subject per commit
 * (`ployz.v1.<inst>.<auth>.commits.<ns>.<commit id>`).
 *
 * Create-only: the publish carries `Nats-Expected-Last-Subject-Sequence: 0` (the server refuses
 * a second message on that subject, with no time window) and `Nats-Msg-Id: <commit id>`
 * (dedup inside the window, also across a lost ack). On either refusal the stored commit is read
 * back and compared byte for byte (canonical JSON): identical → the append is a no-op returning
 * the stored sequence; different → COMMIT_CONFLICT.
 *
 * History for one namespace reads only that namespace's subjects (a filtered consumer), never
 * the whole stream.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type JetStreamClient,
  type JetStreamManager,
  type StoredMsg,
} from '@nats-io/jetstream';
import { canonicalJson } from '@ployz/identity';
import { DeployCommit, PloyzError } from '@ployz/types';
import type { z } from 'zod';
import { reported } from './diagnostics.ts';
import { escapeToken, type Scope, streamSubjects } from './keys.ts';
import { addListingConsumer, mapInFlight } from './listing-consumer.ts';
import { connectionOf, storeFailure } from './quorum.ts';
import { isWrongLastSequence, storeError } from './record-bucket.ts';

export interface StoredCommit {
  seq: number;
  commit: DeployCommit;
}

export interface AppendResult extends StoredCommit {
  /** True when the identical commit was already stored (the append was a no-op). */
  duplicate: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class DeployCommits {
  readonly stream: string;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #prefix: string;

  constructor(js: JetStreamClient, jsm: JetStreamManager, scope: Scope, stream: string) {
    this.#js = js;
    this.#jsm = jsm;
    this.stream = stream;
    this.#prefix = streamSubjects(scope).commits;
  }

  subject(namespace: string, commitId: string): string {
    return `${this.#prefix}.${escapeToken(namespace)}.${escapeToken(commitId)}`;
  }

  async append(input: z.input<typeof DeployCommit>): Promise<AppendResult> {
    const parsed = DeployCommit.safeParse(input);
    if (!parsed.success) {
      throw new PloyzError('INVALID_ARGUMENT', 'deploy commit does not validate', {
        details: { issues: parsed.error.issues },
      });
    }
    const commit = parsed.data;
    const body = canonicalJson(commit);
    const subject = this.subject(commit.namespace, commit.id);
    let storedSeq: number | null = null;
    try {
      const ack = await this.#js.publish(subject, encoder.encode(body), {
        msgID: commit.id,
        expect: { lastSubjectSequence: 0 },
      });
      if (!ack.duplicate) return { seq: ack.seq, commit, duplicate: false };
      storedSeq = ack.seq;
    } catch (err) {
      if (!isWrongLastSequence(err))
        throw await storeFailure(connectionOf(this.#js), err, `appending commit ${commit.id}`);
    }
    const stored = await this.#load(storedSeq === null ? { last_by_subj: subject } : { seq: storedSeq });
    if (stored && stored.subject === subject && decoder.decode(stored.data) === body) {
      return { seq: stored.seq, commit, duplicate: true };
    }
    throw new PloyzError(
      'COMMIT_CONFLICT',
      `a different commit is already stored under id '${commit.id}' in namespace '${commit.namespace}'; commits are immutable, use a new commit id`,
      { details: { commit_id: commit.id, namespace: commit.namespace, stored_seq: stored?.seq ?? null } },
    );
  }

  async get(namespace: string, commitId: string): Promise<StoredCommit | null> {
    const msg = await this.#load({ last_by_subj: this.subject(namespace, commitId) });
    return msg ? { seq: msg.seq, commit: this.#decode(msg.seq, msg.data) } : null;
  }

  /**
   * Commits of one namespace in append order, optionally only those after `afterSeq`. An
   * ephemeral consumer filtered on `…commits.<ns>.>` tells how many match, then delivers just
   * those: other namespaces are never sent to us.
   */
  async list(namespace: string, options: { afterSeq?: number } = {}): Promise<StoredCommit[]> {
    const filter = `${this.#prefix}.${escapeToken(namespace)}.>`;
    let name: string | null = null;
    try {
      const info = await addListingConsumer(this.#jsm, connectionOf(this.#js), this.stream, {
        filter_subject: filter,
        ack_policy: AckPolicy.None,
        inactive_threshold: 30_000 * 1_000_000,
        mem_storage: true,
        ...(options.afterSeq
          ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: options.afterSeq + 1 }
          : { deliver_policy: DeliverPolicy.All }),
      });
      if (info === null) return await this.#listBySubjects(filter, options.afterSeq ?? 0);
      name = info.name;
      const total = info.num_pending;
      if (total === 0) return [];
      const consumer = await this.#js.consumers.get(this.stream, name);
      const out: StoredCommit[] = [];
      let pending = total;
      while (pending > 0) {
        const batch = await consumer.fetch({ max_messages: pending, expires: 5000 });
        const before = out.length;
        for await (const m of batch) {
          out.push({ seq: m.seq, commit: this.#decode(m.seq, m.data) });
          pending = m.info.pending;
          if (pending === 0) break;
        }
        if (out.length === before) break; // nothing arrived before `expires`: return what we have
      }
      return out;
    } catch (err) {
      throw storeError(err, `reading deploy history of ${namespace}`);
    } finally {
      if (name) await this.#jsm.consumers.delete(this.stream, name).catch(() => {});
    }
  }

  /** `list` without a consumer: the stored subjects (one per commit id), then each one's message. */
  async #listBySubjects(filter: string, afterSeq: number): Promise<StoredCommit[]> {
    const info = await this.#jsm.streams.info(this.stream, { subjects_filter: filter });
    const subjects = Object.keys(info.state.subjects ?? {});
    const found = await mapInFlight(subjects, (subject) => this.#load({ last_by_subj: subject }));
    return found
      .filter((m): m is StoredMsg => m !== null && m.seq > afterSeq)
      .sort((a, b) => a.seq - b.seq)
      .map((m) => ({ seq: m.seq, commit: this.#decode(m.seq, m.data) }));
  }

  /** The last sequence of the commits stream (0 when empty). */
  async lastSeq(): Promise<number> {
    try {
      return (await this.#jsm.streams.info(this.stream)).state.last_seq;
    } catch (err) {
      throw storeError(err, 'reading the commits stream');
    }
  }

  async #load(query: { seq: number } | { last_by_subj: string }): Promise<StoredMsg | null> {
    try {
      return await this.#jsm.streams.getMessage(this.stream, query);
    } catch (err) {
      throw storeError(err, 'reading a deploy commit');
    }
  }

  #decode(seq: number, data: Uint8Array): DeployCommit {
    const parsed = DeployCommit.safeParse(JSON.parse(decoder.decode(data)));
    if (!parsed.success) {
      throw reported(
        new PloyzError('STORE_CORRUPT', `deploy commit at seq ${seq} does not match its schema`, {
          details: { seq, issues: parsed.error.issues },
        }),
      );
    }
    return parsed.data;
  }
}
