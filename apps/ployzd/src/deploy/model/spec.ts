/**
 * The deploy engine's view of a desired namespace: what it needs from a parsed manifest to plan,
 * place, start and compare services; the engine never reads TOML itself. A service
 * (`DeployService`, mounts, resources, placement) is the participant's start contract
 * (workloads/start-request.ts, with `deployServiceOf`): the coordinator uses it from there.
 */
import type { DeployReadiness } from '@ployz/protocol';
import type { CommitPolicy, SlotAssignment, VolumeSpec } from '@ployz/types';
import type { DeployService } from '../../workloads/start-request.ts';

export type { DeployService, MountSpec, PlacementSpec, ResourceSpec } from '../../workloads/start-request.ts';
/**
 * A readiness check as the engine runs it (ports resolved to container port numbers): the wire
 * contract of `deploy_ready`, @ployz/protocol's `DeployReadiness`. The manifest's own
 * `ReadinessSpec` (@ployz/types, port names) is the other, parsed shape.
 */
export type { DeployReadiness };

/** @deprecated The old name of {@link DeployReadiness}; import that from @ployz/protocol. */
export type ReadinessSpec = DeployReadiness;

export interface PhaseSpec {
  id: string;
  services: string[];
  after: string[];
  commit: CommitPolicy;
}

export interface DeployManifest {
  namespace: string;
  services: DeployService[];
  phases: PhaseSpec[];
  /** Every declared volume (snapshotted at each commit that covers it). */
  volumes: VolumeSpec[];
  /** Hash of the whole manifest (recorded in status and commits). */
  manifest_hash: string;
  /**
   * Where a service's slots start when the namespace has no release of it yet (a branch starts
   * where its source runs, so that its clones are made where the data is); absent: anywhere.
   */
  place_like?: Readonly<Record<string, readonly SlotAssignment[]>>;
  /**
   * Services whose every slot runs on one machine, whatever ran where before (a volume move: the
   * services mounting the moved volume start on its new machine, and the old slots stop as `moved`).
   */
  place_on?: Readonly<Record<string, string>>;
}
