import type {
  InstanceRecord,
  MachineRecord,
  ReleaseRecord,
  RevisionRecord,
  RoutingEvent,
  RoutingSnapshot,
} from '@ployz/types';

/** Key of a release (and of a service) in the projection state. */
export function serviceKey(namespace: string, service: string): string {
  return `${namespace}/${service}`;
}

/** Read-only view of the records a projection is computed from. */
export interface RoutingState {
  /** Last routing-event sequence reflected in these records. */
  readonly seq: number;
  readonly machines: ReadonlyMap<string, MachineRecord>;
  readonly revisions: ReadonlyMap<string, RevisionRecord>;
  /** Keyed by `serviceKey(namespace, service)`. */
  readonly releases: ReadonlyMap<string, ReleaseRecord>;
  readonly instances: ReadonlyMap<string, InstanceRecord>;
}

/**
 * The in-memory records behind a projection. Events carry full records, so applying one is an
 * idempotent upsert or delete: re-applying events already reflected in a snapshot is harmless.
 */
export class ProjectionState implements RoutingState {
  seq = 0;
  readonly machines = new Map<string, MachineRecord>();
  readonly revisions = new Map<string, RevisionRecord>();
  readonly releases = new Map<string, ReleaseRecord>();
  readonly instances = new Map<string, InstanceRecord>();

  static fromSnapshot(snapshot: RoutingSnapshot): ProjectionState {
    const state = new ProjectionState();
    state.seq = snapshot.seq;
    for (const m of snapshot.machines) state.machines.set(m.id, m);
    for (const r of snapshot.revisions) state.revisions.set(r.id, r);
    for (const r of snapshot.releases) state.releases.set(serviceKey(r.namespace, r.service), r);
    for (const i of snapshot.instances) state.instances.set(i.id, i);
    return state;
  }

  /** Applies one event; `seq` (when given) becomes the state's sequence. */
  apply(event: RoutingEvent, seq?: number): void {
    switch (event.type) {
      case 'machine_upserted':
        this.machines.set(event.machine.id, event.machine);
        break;
      case 'machine_removed':
        this.machines.delete(event.machine_id);
        break;
      case 'revision_stored':
        this.revisions.set(event.revision.id, event.revision);
        break;
      case 'release_committed':
        this.releases.set(serviceKey(event.release.namespace, event.release.service), event.release);
        break;
      case 'release_removed':
        this.releases.delete(serviceKey(event.namespace, event.service));
        break;
      case 'instance_upserted':
        this.instances.set(event.instance.id, event.instance);
        break;
      case 'instance_removed':
        this.instances.delete(event.instance_id);
        break;
      default: {
        const never: never = event;
        throw new Error(`unknown routing event ${JSON.stringify(never)}`);
      }
    }
    if (seq !== undefined) this.seq = seq;
  }
}
