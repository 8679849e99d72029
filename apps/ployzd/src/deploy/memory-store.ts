/**
 * An in-memory DeployStore: the fake that sits beside the JetStream adapter so the
 * orchestrator's sequencing can be tested without I/O. Same contract: commit dedup,
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
import type { Clock, DeployStore, HeldLease } from './ports.ts';

function clone<T>(v: T): T {
  return structuredClone(v);
}

export class MemoryDeployStore implements DeployStore {
  machines = new Map<string, MachineRecord>();
  statuses = new Map<string, DeployStatusRecord>();
  phases = new Map<string, PhaseRecord>();
  commits: DeployCommit[] = [];
  revisions = new Map<string, RevisionRecord>();
  releases = new Map<string, ReleaseRecord>();
  instances = new Map<string, InstanceRecord>();
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
    const s = this.statuses.get(id);
    return s ? clone(s) : null;
  }
  async putStatus(r: DeployStatusRecord) {
    this.check('putStatus');
    this.statuses.set(r.deploy_id, clone(r));
  }
  async listStatuses(namespace?: string) {
    return [...this.statuses.values()]
      .filter((s) => namespace === undefined || s.namespace === namespace)
      .map(clone);
  }
  async putPhase(r: PhaseRecord) {
    this.phases.set(`${r.deploy_id}/${r.phase}`, clone(r));
  }
  async listPhases(deployId: string) {
    return [...this.phases.values()].filter((p) => p.deploy_id === deployId).map(clone);
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
    return this.commits.filter((c) => c.namespace === namespace).map(clone);
  }
  async putRevision(r: RevisionRecord) {
    if (!this.revisions.has(r.id)) this.revisions.set(r.id, clone(r));
  }
  async getRevision(_namespace: string, _service: string, id: string) {
    const r = this.revisions.get(id);
    return r ? clone(r) : null;
  }
  async listReleases(namespace: string) {
    return [...this.releases.values()].filter((r) => r.namespace === namespace).map(clone);
  }
  async putRelease(r: ReleaseRecord) {
    this.releases.set(`${r.namespace}/${r.service}`, clone(r));
  }
  async deleteRelease(namespace: string, service: string) {
    this.releases.delete(`${namespace}/${service}`);
  }
  async listInstances(namespace?: string) {
    return [...this.instances.values()]
      .filter((i) => namespace === undefined || i.namespace === namespace)
      .map(clone);
  }
  async putInstance(r: InstanceRecord) {
    this.check('putInstance');
    this.instances.set(r.id, clone(r));
  }
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
  async appendRoutingEvent(e: RoutingEvent) {
    this.events.push(clone(e));
  }
}
