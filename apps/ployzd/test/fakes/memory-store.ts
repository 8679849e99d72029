/**
 * An in-memory DeployStore: the fake that sits beside the JetStream adapter so the
 * orchestrator's sequencing can be tested without I/O. Same contract: compare-and-set on every
 * KV write (STORE_CONFLICT when the expected revision is not the current one), commit dedup,
 * DEPLOY_LOCK_HELD with holder and expiry, expired leases taken over.
 */
import {
  type DeployCommit,
  type DeployStatusRecord,
  type InstanceRecord,
  type LeaseRecord,
  type MachineRecord,
  type PhaseRecord,
  PloyzError,
  type ReleaseRecord,
  type RevisionRecord,
  type RoutingEvent,
} from '@ployz/types';
import type { Clock, DeployStore, HeldLease, Versioned } from '../../src/deploy/ports.ts';

function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Records by key, each with a revision (one counter for all maps, like a stream sequence). A
 * test that sets a record directly bumps its revision too, so a writer holding the old one
 * loses, as it would on the real store.
 */
export class RecordMap<T> extends Map<string, T> {
  static #seq = 0;
  readonly #revisions = new Map<string, number>();

  override set(key: string, value: T): this {
    super.set(key, value);
    this.#revisions.set(key, ++RecordMap.#seq);
    return this;
  }

  override delete(key: string): boolean {
    this.#revisions.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    this.#revisions.clear();
    super.clear();
  }

  revisionOf(key: string): number | null {
    return this.has(key) ? (this.#revisions.get(key) ?? null) : null;
  }

  versioned(key: string): Versioned<T> | null {
    const value = this.get(key);
    const revision = this.revisionOf(key);
    return value === undefined || revision === null ? null : { value: clone(value), revision };
  }

  /** Compare-and-set: null creates, a number updates the record still at that revision. */
  save(what: string, key: string, value: T, expectedRevision: number | null): number {
    const current = this.revisionOf(key);
    if (current !== expectedRevision) {
      throw new PloyzError(
        'STORE_CONFLICT',
        expectedRevision === null
          ? `${what}/${key} already exists`
          : `${what}/${key} changed since revision ${expectedRevision}; read it again and retry`,
        { details: { bucket: what, key, expectedRevision } },
      );
    }
    this.set(key, clone(value));
    return this.revisionOf(key) as number;
  }

  /** Every record (in insertion order) matching `keep`, with its revision. */
  list(keep: (value: T) => boolean = () => true): Versioned<T>[] {
    return [...this.keys()]
      .map((k) => this.versioned(k))
      .filter((v): v is Versioned<T> => v !== null && keep(v.value));
  }
}

export class MemoryDeployStore implements DeployStore {
  machines = new Map<string, MachineRecord>();
  statuses = new RecordMap<DeployStatusRecord>();
  phases = new RecordMap<PhaseRecord>();
  commits: DeployCommit[] = [];
  revisions = new Map<string, RevisionRecord>();
  releases = new RecordMap<ReleaseRecord>();
  instances = new RecordMap<InstanceRecord>();
  leases = new Map<string, LeaseRecord>();
  events: RoutingEvent[] = [];
  /** Test hook: throw from the named method once. */
  failNext = new Map<string, Error>();
  private readonly clock: Clock;
  private nonce = 0;

  constructor(clock: Clock) {
    this.clock = clock;
  }

  private check(method: string): void {
    const err = this.failNext.get(method);
    if (err) {
      this.failNext.delete(method);
      throw err;
    }
  }

  async listMachines() {
    return [...this.machines.values()].map(clone);
  }
  async getStatus(id: string) {
    return this.statuses.versioned(id);
  }
  async putStatus(r: DeployStatusRecord, expectedRevision: number | null) {
    this.check('putStatus');
    return this.statuses.save('statuses', r.deploy_id, r, expectedRevision);
  }
  async listStatusIds() {
    return [...this.statuses.keys()];
  }
  async listStatuses(namespace?: string) {
    this.check('listStatuses');
    return this.statuses.list((s) => namespace === undefined || s.namespace === namespace);
  }
  async putPhase(r: PhaseRecord, expectedRevision: number | null) {
    return this.phases.save('phases', `${r.deploy_id}/${r.phase}`, r, expectedRevision);
  }
  async listPhases(deployId: string) {
    return this.phases.list((p) => p.deploy_id === deployId);
  }
  async appendCommit(c: DeployCommit) {
    this.check('appendCommit');
    const prev = this.commits.find((x) => x.id === c.id);
    if (prev) {
      if (JSON.stringify(prev) === JSON.stringify(c)) return;
      throw new PloyzError('COMMIT_CONFLICT', `commit ${c.id} exists with different content`);
    }
    this.commits.push(clone(c));
  }
  async listCommits(namespace: string) {
    this.check('listCommits');
    return this.commits.filter((c) => c.namespace === namespace).map(clone);
  }
  async getCommit(namespace: string, commitId: string) {
    const c = this.commits.find((x) => x.namespace === namespace && x.id === commitId);
    return c === undefined ? null : clone(c);
  }
  async putRevision(r: RevisionRecord) {
    if (!this.revisions.has(r.id)) this.revisions.set(r.id, clone(r));
  }
  async getRevision(_namespace: string, _service: string, id: string) {
    const r = this.revisions.get(id);
    return r ? clone(r) : null;
  }
  async listReleases(namespace?: string) {
    return this.releases.list((r) => namespace === undefined || r.namespace === namespace);
  }
  async putRelease(r: ReleaseRecord, expectedRevision: number | null) {
    return this.releases.save('releases', `${r.namespace}/${r.service}`, r, expectedRevision);
  }
  async deleteRelease(namespace: string, service: string, expectedRevision: number) {
    const key = `${namespace}/${service}`;
    if (this.releases.revisionOf(key) !== expectedRevision) {
      throw new PloyzError('STORE_CONFLICT', `releases/${key} changed since revision ${expectedRevision}`);
    }
    this.releases.delete(key);
  }
  async listInstances(namespace?: string) {
    return this.instances.list((i) => namespace === undefined || i.namespace === namespace);
  }
  async getInstance(_namespace: string, _service: string, id: string) {
    return this.instances.versioned(id);
  }
  async putInstance(r: InstanceRecord, expectedRevision: number | null) {
    this.check('putInstance');
    return this.instances.save('instances', r.id, r, expectedRevision);
  }
  /** Whatever is current goes (the real adapter re-reads and retries). */
  async deleteInstance(r: InstanceRecord) {
    this.instances.delete(r.id);
  }
  async acquireLease(key: string, owner: string, ttlMs: number, purpose: string): Promise<HeldLease> {
    const now = this.clock.now();
    const cur = this.leases.get(key);
    if (cur && Date.parse(cur.expires_at) > now.getTime()) {
      throw new PloyzError(
        'DEPLOY_LOCK_HELD',
        `the deploy lease ${key} is held by ${cur.owner} until ${cur.expires_at}`,
        {
          details: { key, holder: cur.owner, expires_at: cur.expires_at, purpose: cur.purpose },
        },
      );
    }
    const record: LeaseRecord = {
      key,
      owner,
      nonce: `n${++this.nonce}`,
      purpose,
      acquired_at: now.toISOString(),
      expires_at: new Date(now.getTime() + ttlMs).toISOString(),
    };
    this.leases.set(key, record);
    const leases = this.leases;
    const clock = this.clock;
    return {
      record,
      async renew() {
        const held = leases.get(key);
        if (held?.nonce !== record.nonce) throw new PloyzError('LEASE_LOST', `lease ${key} was taken over`);
        leases.set(key, { ...held, expires_at: new Date(clock.now().getTime() + ttlMs).toISOString() });
      },
      async release() {
        if (leases.get(key)?.nonce === record.nonce) leases.delete(key);
      },
    };
  }
  async getLease(key: string) {
    const l = this.leases.get(key);
    return l ? clone(l) : null;
  }
  async listLeases() {
    return [...this.leases.values()].map(clone);
  }
  async breakLease(record: LeaseRecord) {
    if (this.leases.get(record.key)?.nonce === record.nonce) this.leases.delete(record.key);
  }
  async appendRoutingEvents(events: readonly RoutingEvent[]) {
    for (const e of events) this.events.push(clone(e));
  }
}
