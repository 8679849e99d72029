/** What every part of the engine is built from: the ports plus this daemon's identity and knobs. */
import type { Clock, DeployStore, ImageAgent, MachineAgent, RevisionCodec, VolumeAgent } from './ports.ts';

export interface EngineOptions {
  store: DeployStore;
  agent: MachineAgent;
  codec: RevisionCodec;
  /** Snapshots at commits and reverts on rollbacks; absent (pure-logic tests), volumes are not snapshotted. */
  volumes?: VolumeAgent | undefined;
  /** Images sent to the machines that lack them; absent (pure-logic tests), nothing is checked or sent. */
  images?: ImageAgent | undefined;
  clock: Clock;
  /** Container name prefix (`--container-prefix`, `ployz-`): names come from workloads' one name function. */
  containerPrefix: string;
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
