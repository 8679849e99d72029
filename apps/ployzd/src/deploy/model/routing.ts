/**
 * The routing events a deploy publishes. Pure. A commit implies, in this order: its revisions
 * stored, its new instances upserted, its releases committed or removed (KV first, then the
 * event: the store's consistency rule). Draining and removal are one event each.
 */
import type { DeployCommit, InstanceRecord, RevisionRecord, RoutingEvent } from '@ployz/types';
import { releasesOf } from './commits.ts';

export function instanceUpserted(
  instance: InstanceRecord,
  deployId: string | null,
  at: string,
): RoutingEvent {
  return { type: 'instance_upserted', instance, deploy_id: deployId, at };
}

export function instanceRemoved(instanceId: string, deployId: string | null, at: string): RoutingEvent {
  return { type: 'instance_removed', instance_id: instanceId, deploy_id: deployId, at };
}

/** The events of one commit: `revisions` and `instances` as stored now. */
export function commitRoutingEvents(
  commit: DeployCommit,
  revisions: readonly RevisionRecord[],
  instances: readonly InstanceRecord[],
  at: string,
): RoutingEvent[] {
  const deploy_id = commit.deploy_id;
  return [
    ...revisions.map((revision): RoutingEvent => ({ type: 'revision_stored', revision, deploy_id, at })),
    ...instances.map((i) => instanceUpserted(i, deploy_id, at)),
    ...releasesOf(commit).map(
      (release): RoutingEvent => ({ type: 'release_committed', release, deploy_id, at }),
    ),
    ...commit.removed_services.map(
      (service): RoutingEvent => ({
        type: 'release_removed',
        namespace: commit.namespace,
        service,
        deploy_id,
        at,
      }),
    ),
  ];
}
