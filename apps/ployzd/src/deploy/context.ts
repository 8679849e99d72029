/** What every part of the engine is built from: the ports plus this daemon's identity and knobs. */
import type { Clock, DeployStore, MachineAgent, RevisionCodec } from './ports.ts';

export interface EngineOptions {
  store: DeployStore;
  agent: MachineAgent;
  codec: RevisionCodec;
  clock: Clock;
  /** This machine's id (owner of leases taken here). */
  machineId: string;
  /** Unique per daemon process; a lease owned by this machine with another nonce is stale. */
  processNonce: string;
  /** Deploy lease time-to-live; renewed every third of it. */
  leaseTtlMs?: number;
  /** Time between marking old instances draining and stopping them. */
  drainMs?: number;
  /** Test-only: pause before this step (1–9) until the process is killed. */
  pauseAtStep?: number | undefined;
  newDeployId: () => string;
  newInstanceId: (namespace: string, service: string, slot: number) => string;
}

export function leaseKey(namespace: string): string {
  return `cp.lock.deploy.${namespace}`;
}

export function leaseOwner(opts: Pick<EngineOptions, 'machineId' | 'processNonce'>): string {
  return `ployzd:${opts.machineId}:${opts.processNonce}`;
}
