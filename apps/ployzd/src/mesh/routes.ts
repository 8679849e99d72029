/**
 * The routes the mesh owns: each peer's workload /24 through wg0 in the networking netns, and on
 * the host via the networking container's bridge address (`.2`), so a workload's packets (whose
 * gateway is the host, `.1`) reach wg0. Every route the mesh writes carries its own protocol
 * number, so a restarted daemon finds exactly its routes again: missing ones are added, stale
 * ones removed, and a converged table is left alone.
 */

import { type CommandRunner, mustRun } from './command.ts';
import { canonicalCidr } from './peers.ts';

/** `ip route … proto 77`: marks the mesh's routes (no other owner on these machines uses 77). */
export const MESH_ROUTE_PROTO = '77';

/** Where a mesh route points: out of an interface (wg0), or via a next hop (the networking `.2`). */
export type RouteTarget = { dev: string } | { via: string };

export interface LiveRoute {
  dst: string;
  dev: string | null;
  gateway: string | null;
}

export interface RouteChanges {
  /** Added or repointed (`ip route replace`). */
  replaced: string[];
  removed: string[];
}

function pointsAt(route: LiveRoute, target: RouteTarget): boolean {
  return 'dev' in target ? route.dev === target.dev && route.gateway === null : route.gateway === target.via;
}

/** Pure: which of the mesh's routes to replace and which to remove so that exactly `subnets` point at `target`. */
export function routeChanges(
  current: readonly LiveRoute[],
  target: RouteTarget,
  subnets: readonly string[],
): RouteChanges {
  const wanted = new Set(subnets.map(canonicalCidr));
  const live = new Map(current.map((r) => [canonicalCidr(r.dst), r]));
  const replaced = [...wanted].filter((s) => {
    const route = live.get(s);
    return route === undefined || !pointsAt(route, target);
  });
  const removed = [...live.keys()].filter((dst) => !wanted.has(dst));
  return { replaced: replaced.sort(), removed: removed.sort() };
}

/** Parses `ip -j route show` (an empty table may print nothing at all). */
export function parseRoutes(json: string): LiveRoute[] {
  if (json.trim() === '') return [];
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error(`ip -j route printed ${json.slice(0, 80)}`);
  return parsed.flatMap((entry: unknown) => {
    if (typeof entry !== 'object' || entry === null) return [];
    const r = entry as Record<string, unknown>;
    if (typeof r.dst !== 'string') return [];
    // A host route prints without its /32; the mesh only writes /24s, so a bare address is not ours to keep.
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    return [
      {
        dst,
        dev: typeof r.dev === 'string' ? r.dev : null,
        gateway: typeof r.gateway === 'string' ? r.gateway : null,
      },
    ];
  });
}

function targetArgs(target: RouteTarget): string[] {
  return 'dev' in target ? ['dev', target.dev] : ['via', target.via];
}

/** Reads the mesh's IPv4 routes in `run`'s netns and makes them exactly `subnets` → `target`. */
export async function syncRoutes(
  run: CommandRunner,
  where: string,
  target: RouteTarget,
  subnets: readonly string[],
): Promise<RouteChanges> {
  const listed = await mustRun(run, ['ip', '-j', '-4', 'route', 'show', 'proto', MESH_ROUTE_PROTO], where);
  // On the host, only the routes via this machine's own `.2` are its: another daemon sharing the
  // netns (tests) keeps its own.
  const live = parseRoutes(listed).filter((r) => 'dev' in target || r.gateway === target.via);
  const changes = routeChanges(live, target, subnets);
  for (const dst of changes.removed) {
    await mustRun(run, ['ip', '-4', 'route', 'del', dst, 'proto', MESH_ROUTE_PROTO], where);
  }
  for (const dst of changes.replaced) {
    await mustRun(
      run,
      ['ip', '-4', 'route', 'replace', dst, ...targetArgs(target), 'proto', MESH_ROUTE_PROTO],
      where,
    );
  }
  return changes;
}

/**
 * The host side (item 3 of the mesh): every peer subnet via the networking container's bridge
 * address, in the daemon's netns. With no peers it removes only the mesh's own routes.
 */
export function syncHostRoutes(run: CommandRunner, networkingAddress: string, subnets: readonly string[]) {
  return syncRoutes(run, 'the host', { via: networkingAddress }, subnets);
}
