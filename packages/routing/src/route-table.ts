import type { InstanceRecord } from '@ployz/types';
import { unroutableReason } from './routable.ts';
import { httpRoutesOf } from './route-spec.ts';
import type { RoutingState } from './state.ts';

/** One upstream address a route may send traffic to. */
export interface Backend {
  readonly instance: string;
  readonly machine: string;
  readonly host: string;
  readonly port: number;
  /** `host:port` (IPv6 hosts in brackets), unique per backend. */
  readonly key: string;
}

/** One host + path prefix and the routable backends behind it (possibly none). */
export interface Route {
  /** `host` + `path`, e.g. `api.example.com/v1`; used as the metrics label. */
  readonly id: string;
  readonly host: string;
  readonly path: string;
  readonly namespace: string;
  readonly service: string;
  readonly backends: readonly Backend[];
  /** Plain HTTP is answered 308 to https (`https_redirect`); absent when not asked for. */
  readonly httpsRedirect?: true;
}

/** Two services claiming the same host and path; the first (by namespace/service) wins. */
export interface RouteConflict {
  readonly id: string;
  readonly winner: string;
  readonly loser: string;
}

/**
 * An immutable route table. Hosts map to their routes sorted by path length, longest first.
 * Wildcard hosts (`*.example.com`) are keyed by their suffix (`example.com`).
 */
export interface RouteTable {
  readonly seq: number;
  readonly exact: ReadonlyMap<string, readonly Route[]>;
  readonly wildcard: ReadonlyMap<string, readonly Route[]>;
  readonly routeCount: number;
  readonly backendCount: number;
  readonly conflicts: readonly RouteConflict[];
}

export const EMPTY_ROUTE_TABLE: RouteTable = Object.freeze({
  seq: 0,
  exact: new Map(),
  wildcard: new Map(),
  routeCount: 0,
  backendCount: 0,
  conflicts: [],
});

function backendOf(instance: InstanceRecord, portName: string): Backend | null {
  const ip = instance.ip;
  if (ip === null) return null;
  const port = instance.ports[portName];
  if (port === undefined) return null;
  const host = ip.includes(':') ? `[${ip}]` : ip;
  return { instance: instance.id, machine: instance.machine, host: ip, port, key: `${host}:${port}` };
}

/** The routes one release asks for, before conflicts between releases are settled. */
export interface ReleaseRoutes {
  /** `serviceKey(namespace, service)` of the release. */
  readonly key: string;
  readonly routes: readonly Route[];
}

/** What a release's routes were computed from (so an event can find the releases it touches). */
export interface ReleaseDependencies {
  readonly revision: string;
  readonly instances: readonly string[];
  readonly machines: readonly string[];
}

/**
 * The routes of one committed release: those of its current revision and, per slot, the active
 * instance when it is routable. Pure; `deps` (when given) receives what was read.
 */
export function releaseRoutes(
  state: RoutingState,
  key: string,
  deps?: { revision: string; instances: string[]; machines: string[] },
): ReleaseRoutes | undefined {
  const release = state.releases.get(key);
  if (release === undefined) return undefined;
  if (deps !== undefined) {
    deps.revision = release.revision;
    for (const slot of release.slots) deps.instances.push(slot.instance);
  }
  const revision = state.revisions.get(release.revision);
  if (revision === undefined) return undefined;
  const specs = httpRoutesOf(revision.spec);
  if (specs.length === 0) return undefined;

  const instances: InstanceRecord[] = [];
  for (const slot of release.slots) {
    const instance = state.instances.get(slot.instance);
    if (instance === undefined) continue;
    deps?.machines.push(instance.machine);
    if (unroutableReason(instance, release, state.machines.get(instance.machine)) !== null) continue;
    instances.push(instance);
  }
  instances.sort((a, b) => a.slot - b.slot);

  const routes: Route[] = [];
  for (const spec of specs) {
    const backends: Backend[] = [];
    for (const instance of instances) {
      const b = backendOf(instance, spec.port);
      if (b !== null) backends.push(b);
    }
    for (const hostname of spec.hostnames) {
      routes.push({
        id: `${hostname}${spec.path === '/' ? '' : spec.path}`,
        host: hostname,
        path: spec.path,
        namespace: release.namespace,
        service: release.service,
        backends,
        ...(spec.httpsRedirect ? { httpsRedirect: true as const } : {}),
      });
    }
  }
  return { key, routes };
}

/**
 * Builds a table from per-release routes given in release-key order: the first release claiming
 * a host + path wins (the others are reported as conflicts); hosts' routes sorted by path
 * length, longest first.
 */
export function assembleRoutes(seq: number, releases: Iterable<ReleaseRoutes>): RouteTable {
  const exact = new Map<string, Route[]>();
  const wildcard = new Map<string, Route[]>();
  const owners = new Map<string, string>();
  const conflicts: RouteConflict[] = [];
  let routeCount = 0;
  let backendCount = 0;
  for (const { key, routes } of releases) {
    for (const route of routes) {
      const owner = owners.get(route.id);
      if (owner !== undefined) {
        if (owner !== key) conflicts.push({ id: route.id, winner: owner, loser: key });
        continue;
      }
      owners.set(route.id, key);
      const isWildcard = route.host.startsWith('*.');
      const host = isWildcard ? route.host.slice(2) : route.host;
      const target = isWildcard ? wildcard : exact;
      const list = target.get(host);
      if (list === undefined) target.set(host, [route]);
      else list.push(route);
      routeCount += 1;
      backendCount += route.backends.length;
    }
  }
  const byLength = (a: Route, b: Route) => b.path.length - a.path.length;
  for (const list of exact.values()) if (list.length > 1) list.sort(byLength);
  for (const list of wildcard.values()) if (list.length > 1) list.sort(byLength);
  return { seq, exact, wildcard, routeCount, backendCount, conflicts };
}

/**
 * The pure projection from routing records to a route table: for each committed release, the
 * routes of its current revision and, per slot, the active instance when it is routable.
 * Cost is linear in releases × slots; instances outside a release's slots are never visited.
 * `IncrementalRoutes` computes the same table event by event; this is its oracle and fallback.
 */
export function projectRoutes(state: RoutingState): RouteTable {
  const keys = [...state.releases.keys()].sort();
  const releases: ReleaseRoutes[] = [];
  for (const key of keys) {
    const routes = releaseRoutes(state, key);
    if (routes !== undefined) releases.push(routes);
  }
  return assembleRoutes(state.seq, releases);
}
