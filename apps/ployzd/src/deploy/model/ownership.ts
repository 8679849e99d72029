/**
 * Route ownership between namespaces: a hostname + path prefix (or a TCP listen port) that a
 * committed release of one namespace routes cannot be claimed by a deploy of another. Checked in
 * the planning step, from stored releases and their revisions, so a refused deploy writes
 * nothing. A release that no longer routes a hostname (a new revision without the route, or the
 * service removed) frees it. Pure: specs in, claims and conflicts out.
 *
 * Two deploys of different namespaces racing for one free hostname both pass (they hold
 * different leases); the gateway then keeps the first by namespace/service and reports the
 * conflict in its status.
 */
import { httpRoutesOf, projectRoutes, type RouteConflict, serviceKey } from '@ployz/routing';
import {
  PloyzError,
  type ReleaseRecord,
  type RevisionRecord,
  type ServiceSpec,
  type StoredServiceSpec,
} from '@ployz/types';
import type { DeployManifest } from './spec.ts';

/** One route a service asks for: `hello.localhost/api` (as the gateway names routes) or `tcp:5432`. */
export interface RouteClaim {
  readonly route: string;
  readonly namespace: string;
  readonly service: string;
}

export interface RouteOwnershipConflict {
  readonly route: string;
  readonly service: string;
  readonly owner_namespace: string;
  readonly owner_service: string;
}

/** The HTTP routes (normalised like the gateway's route ids) and TCP listen ports of a spec. */
export function routeClaimsOf(
  namespace: string,
  service: string,
  spec: Pick<ServiceSpec | StoredServiceSpec, 'routes'>,
): RouteClaim[] {
  const claims: RouteClaim[] = [];
  for (const http of httpRoutesOf(spec)) {
    for (const host of http.hostnames) {
      claims.push({ route: `${host}${http.path === '/' ? '' : http.path}`, namespace, service });
    }
  }
  for (const route of Array.isArray(spec.routes) ? (spec.routes as unknown[]) : []) {
    const r = route as { kind?: unknown; listen?: unknown } | null;
    if (r?.kind === 'tcp' && typeof r.listen === 'number') {
      claims.push({ route: `tcp:${r.listen}`, namespace, service });
    }
  }
  return claims;
}

/** Claims of committed releases: each release's current revision (unknown revisions claim nothing). */
export function committedClaims(
  releases: readonly ReleaseRecord[],
  revisions: ReadonlyMap<string, RevisionRecord>,
): RouteClaim[] {
  return releases.flatMap((release) => {
    const revision = revisions.get(release.revision);
    return revision === undefined ? [] : routeClaimsOf(release.namespace, release.service, revision.spec);
  });
}

/** The manifest's routes that a committed release of another namespace owns. */
export function ownershipConflicts(
  manifest: DeployManifest,
  committed: readonly RouteClaim[],
): RouteOwnershipConflict[] {
  const owners = new Map<string, RouteClaim>();
  for (const claim of committed) {
    if (claim.namespace !== manifest.namespace && !owners.has(claim.route)) owners.set(claim.route, claim);
  }
  const conflicts: RouteOwnershipConflict[] = [];
  for (const service of manifest.services) {
    for (const claim of routeClaimsOf(manifest.namespace, service.name, service.source)) {
      const owner = owners.get(claim.route);
      if (owner === undefined) continue;
      conflicts.push({
        route: claim.route,
        service: service.name,
        owner_namespace: owner.namespace,
        owner_service: owner.service,
      });
    }
  }
  return conflicts;
}

/** Throws `HOSTNAME_OWNED` naming every route of the manifest another namespace owns. */
export function assertRoutesFree(manifest: DeployManifest, committed: readonly RouteClaim[]): void {
  const conflicts = ownershipConflicts(manifest, committed);
  const first = conflicts[0];
  if (first === undefined) return;
  const more = conflicts.length > 1 ? ` (and ${conflicts.length - 1} more)` : '';
  throw new PloyzError(
    'HOSTNAME_OWNED',
    `${first.route} (service ${first.service}) is owned by namespace ${first.owner_namespace}, service ${first.owner_service}${more}; ` +
      `pick another hostname, or release it from ${first.owner_namespace} first`,
    { details: { namespace: manifest.namespace, conflicts } },
  );
}

/**
 * The host + path conflicts the gateway's projection finds among these committed releases (the
 * first by namespace/service keeps the route): what a race past `assertRoutesFree`, or releases
 * stored before it, left behind.
 */
export function storedRouteConflicts(
  releases: readonly ReleaseRecord[],
  revisions: ReadonlyMap<string, RevisionRecord>,
): RouteConflict[] {
  const table = projectRoutes({
    seq: 0,
    machines: new Map(),
    instances: new Map(),
    revisions,
    releases: new Map(releases.map((r) => [serviceKey(r.namespace, r.service), r])),
  });
  return [...table.conflicts];
}
