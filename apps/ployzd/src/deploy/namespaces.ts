/**
 * Namespaces as an operator sees them (`ployzctl namespace ls|rm`). A namespace exists while a
 * committed release of it does; removing it is a deploy of a manifest without services, so it
 * takes the lease, previews what goes, commits the removed services (history keeps them),
 * publishes the routing events that release its hostnames and stops its instances. Volumes are
 * not part of that manifest, so they stay (their records too). `namespaceViews` is pure.
 */

import { createHash } from 'node:crypto';
import type { NamespaceView } from '@ployz/protocol';
import { httpRoutesOf, unroutableReason } from '@ployz/routing';
import {
  type DeployStatusRecord,
  type InstanceRecord,
  type MachineRecord,
  PloyzError,
  type ReleaseRecord,
  type RevisionRecord,
} from '@ployz/types';
import type { DeployManifest } from './model/spec.ts';

export interface NamespaceInput {
  releases: readonly ReleaseRecord[];
  instances: readonly InstanceRecord[];
  machines: readonly MachineRecord[];
  /** Revision id → record (the releases' current revisions). */
  revisions: ReadonlyMap<string, RevisionRecord>;
  /** Namespace → its newest deploy. */
  lastDeploys: ReadonlyMap<string, DeployStatusRecord>;
}

/** One view per namespace with a committed release, sorted by name. */
export function namespaceViews(input: NamespaceInput): NamespaceView[] {
  const names = [...new Set(input.releases.map((r) => r.namespace))].sort();
  const machines = new Map(input.machines.map((m) => [m.id, m]));
  return names.map((namespace) => {
    const releases = input.releases.filter((r) => r.namespace === namespace);
    const byService = new Map(releases.map((r) => [r.service, r]));
    const instances = input.instances.filter((i) => i.namespace === namespace);
    const hostnames = new Set<string>();
    for (const r of releases) {
      const spec = input.revisions.get(r.revision)?.spec;
      if (spec === undefined) continue;
      for (const http of httpRoutesOf(spec)) for (const h of http.hostnames) hostnames.add(h);
    }
    return {
      namespace,
      services: releases.map((r) => r.service).sort(),
      instances: instances.length,
      routable: instances.filter(
        (i) => unroutableReason(i, byService.get(i.service), machines.get(i.machine)) === null,
      ).length,
      hostnames: [...hostnames].sort(),
      last_deploy: input.lastDeploys.get(namespace) ?? null,
    };
  });
}

/**
 * The manifest of a namespace's removal: no services, no phases, no volumes. Its hash names the
 * removal (never equal to a real manifest's), so history shows what the deploy was.
 */
export function removalManifest(namespace: string): DeployManifest {
  const hash = createHash('sha256').update(`ployz namespace removal\0${namespace}`).digest('hex');
  return { namespace, services: [], phases: [], volumes: [], manifest_hash: `removal:${hash.slice(0, 32)}` };
}

/** NAMESPACE_UNKNOWN unless something of the namespace is stored (a release or an instance). */
export function assertNamespaceKnown(
  namespace: string,
  releases: readonly ReleaseRecord[],
  instances: readonly InstanceRecord[],
): void {
  if (releases.some((r) => r.namespace === namespace) || instances.some((i) => i.namespace === namespace))
    return;
  throw new PloyzError('NAMESPACE_UNKNOWN', `no namespace ${namespace}; see ployzctl namespace ls`, {
    details: { namespace },
  });
}
