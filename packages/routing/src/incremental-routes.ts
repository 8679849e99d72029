import type { RoutingEvent } from '@ployz/types';
import type { IncrementalProjection } from './follower.ts';
import { assembleRoutes, type ReleaseRoutes, type RouteTable, releaseRoutes } from './route-table.ts';
import { type RoutingState, serviceKey } from './state.ts';

interface Entry {
  routes: ReleaseRoutes | undefined;
  revision: string;
  instances: readonly string[];
  machines: readonly string[];
}

function addTo(index: Map<string, Set<string>>, id: string, key: string): void {
  const set = index.get(id);
  if (set === undefined) index.set(id, new Set([key]));
  else set.add(key);
}

function removeFrom(index: Map<string, Set<string>>, id: string, key: string): void {
  const set = index.get(id);
  if (set === undefined) return;
  set.delete(key);
  if (set.size === 0) index.delete(id);
}

/**
 * The route table kept up to date event by event: each event recomputes only the releases it
 * can change (found through indexes of the revision, instances and machines each release's
 * routes were computed from), then the table is reassembled from the cached per-release routes.
 * `full()` is `projectRoutes()` plus the indexes; `update()` returns what `projectRoutes()` would.
 */
export class IncrementalRoutes implements IncrementalProjection<RouteTable> {
  readonly #entries = new Map<string, Entry>();
  readonly #byRevision = new Map<string, Set<string>>();
  readonly #byInstance = new Map<string, Set<string>>();
  readonly #byMachine = new Map<string, Set<string>>();
  #sortedKeys: string[] | null = null;
  /** Releases recomputed by the last `update()` (tests, metrics). */
  lastRecomputed = 0;

  full(state: RoutingState): RouteTable {
    this.#entries.clear();
    this.#byRevision.clear();
    this.#byInstance.clear();
    this.#byMachine.clear();
    this.#sortedKeys = null;
    for (const key of state.releases.keys()) this.#compute(state, key);
    this.lastRecomputed = state.releases.size;
    return this.#assemble(state.seq);
  }

  update(state: RoutingState, events: readonly RoutingEvent[]): RouteTable {
    const dirty = new Set<string>();
    const mark = (set: Set<string> | undefined) => {
      if (set !== undefined) for (const key of set) dirty.add(key);
    };
    for (const event of events) {
      switch (event.type) {
        case 'machine_upserted':
          mark(this.#byMachine.get(event.machine.id));
          break;
        case 'machine_removed':
          mark(this.#byMachine.get(event.machine_id));
          break;
        case 'revision_stored':
          mark(this.#byRevision.get(event.revision.id));
          break;
        case 'release_committed':
          dirty.add(serviceKey(event.release.namespace, event.release.service));
          break;
        case 'release_removed':
          dirty.add(serviceKey(event.namespace, event.service));
          break;
        case 'instance_upserted':
          mark(this.#byInstance.get(event.instance.id));
          break;
        case 'instance_removed':
          mark(this.#byInstance.get(event.instance_id));
          break;
        default: {
          const never: never = event;
          throw new Error(`unknown routing event ${JSON.stringify(never)}`);
        }
      }
    }
    for (const key of dirty) this.#compute(state, key);
    this.lastRecomputed = dirty.size;
    return this.#assemble(state.seq);
  }

  #compute(state: RoutingState, key: string): void {
    const old = this.#entries.get(key);
    if (old !== undefined) {
      removeFrom(this.#byRevision, old.revision, key);
      for (const id of old.instances) removeFrom(this.#byInstance, id, key);
      for (const id of old.machines) removeFrom(this.#byMachine, id, key);
    }
    if (!state.releases.has(key)) {
      if (old !== undefined) {
        this.#entries.delete(key);
        this.#sortedKeys = null;
      }
      return;
    }
    const deps = { revision: '', instances: [] as string[], machines: [] as string[] };
    const routes = releaseRoutes(state, key, deps);
    this.#entries.set(key, { routes, ...deps });
    if (old === undefined) this.#sortedKeys = null;
    addTo(this.#byRevision, deps.revision, key);
    for (const id of deps.instances) addTo(this.#byInstance, id, key);
    for (const id of deps.machines) addTo(this.#byMachine, id, key);
  }

  #assemble(seq: number): RouteTable {
    this.#sortedKeys ??= [...this.#entries.keys()].sort();
    const releases: ReleaseRoutes[] = [];
    for (const key of this.#sortedKeys) {
      const routes = this.#entries.get(key)?.routes;
      if (routes !== undefined) releases.push(routes);
    }
    return assembleRoutes(seq, releases);
  }
}
