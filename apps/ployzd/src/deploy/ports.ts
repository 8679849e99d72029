/**
 * The narrow interfaces the apply orchestrator talks to. The daemon wires them to @ployz/store
 * (JetStream), the machine-command RPC and the clock; tests wire them to real servers, and an
 * in-memory store sits beside the real one for the orchestrator's pure-logic tests.
 */
import type {
  DeployCommit,
  DeployStatusRecord,
  InstanceRecord,
  LeaseRecord,
  MachineRecord,
  PhaseRecord,
  ReleaseRecord,
  RevisionRecord,
  RoutingEvent,
} from '@ployz/types';
import type { MachineCapacity } from './placement.ts';
import type { DeployService, ReadinessSpec } from './spec.ts';

/** A held lease. `renew` extends it (CAS); `release` gives it up (owner + nonce). */
export interface HeldLease {
  readonly record: LeaseRecord;
  renew(): Promise<void>;
  release(): Promise<void>;
}

export interface DeployStore {
  listMachines(): Promise<MachineRecord[]>;

  getStatus(deployId: string): Promise<DeployStatusRecord | null>;
  /** Creates or updates (compare-and-set on the last revision this store saw). */
  putStatus(record: DeployStatusRecord): Promise<void>;
  listStatuses(namespace?: string): Promise<DeployStatusRecord[]>;

  putPhase(record: PhaseRecord): Promise<void>;
  listPhases(deployId: string): Promise<PhaseRecord[]>;

  /** Create-only with dedup: the identical commit twice is a no-op, a different one a conflict. */
  appendCommit(commit: DeployCommit): Promise<void>;
  listCommits(namespace: string): Promise<DeployCommit[]>;

  /** Content-addressed: put is idempotent. */
  putRevision(record: RevisionRecord): Promise<void>;
  getRevision(namespace: string, service: string, id: string): Promise<RevisionRecord | null>;

  listReleases(namespace: string): Promise<ReleaseRecord[]>;
  putRelease(record: ReleaseRecord): Promise<void>;
  deleteRelease(namespace: string, service: string): Promise<void>;

  listInstances(namespace?: string): Promise<InstanceRecord[]>;
  putInstance(record: InstanceRecord): Promise<void>;
  deleteInstance(record: InstanceRecord): Promise<void>;

  /** Acquire a lease; held by someone else (and not expired) → DEPLOY_LOCK_HELD. */
  acquireLease(key: string, owner: string, ttlMs: number, purpose: string): Promise<HeldLease>;
  getLease(key: string): Promise<LeaseRecord | null>;
  listLeases(): Promise<LeaseRecord[]>;
  /** Break a lease whose holder is known to be gone (CAS on the record read). */
  breakLease(record: LeaseRecord): Promise<void>;

  appendRoutingEvent(event: RoutingEvent): Promise<void>;
}

export interface StartRequest {
  namespace: string;
  service: DeployService;
  revision: string;
  deploy: string;
  instance: string;
  slot: number;
  machine: string;
}

export interface StartedInstance {
  container_id: string;
  ip: string | null;
}

export interface StopRequest {
  namespace: string;
  service: string;
  instance: string;
  machine: string;
  stop_grace_ms: number;
}

/** The participant side: one machine's capacity, containers and readiness (RPC or local). */
export interface MachineAgent {
  /** Live capacity; throws RPC_NO_RESPONDERS / RPC_TIMEOUT when the machine does not answer. */
  capacity(machine: string): Promise<MachineCapacity>;
  start(request: StartRequest): Promise<StartedInstance>;
  /** Resolves once ready; throws DEPLOY_READINESS_FAILED when the probe gives up. */
  waitReady(
    machine: string,
    instance: StartedInstance & { name: string },
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void>;
  /** Stops (grace, then kill) and removes; an already absent container is success. */
  stop(request: StopRequest): Promise<void>;
}

export interface Clock {
  now(): Date;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** How a service becomes a stored revision and back (sealing lives behind this). */
export interface RevisionCodec {
  revisionId(namespace: string, service: DeployService): string;
  toRecord(namespace: string, service: DeployService, at: string): RevisionRecord;
  fromRecord(record: RevisionRecord): DeployService;
}

export const systemClock: Clock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};
