/**
 * History and rollback: list deploys, show one (status, phases, commits), and rebuild the
 * services a committed deploy left behind from stored revisions, as a manifest a new deploy
 * applies with `rollback_of` set. The cluster never silently rewinds: a rollback is a deploy.
 */
import { type DeployCommit, type DeployStatusRecord, type PhaseRecord, PloyzError } from '@ployz/types';
import { servicesOfDeploy } from './commits.ts';
import type { EngineOptions } from './context.ts';
import type { DeployManifest } from './spec.ts';

export interface DeployDetail {
  status: DeployStatusRecord;
  phases: PhaseRecord[];
  commits: DeployCommit[];
}

export async function listDeploys(opts: EngineOptions, namespace?: string): Promise<DeployStatusRecord[]> {
  const all = await opts.store.listStatuses(namespace);
  return all.sort((a, b) =>
    a.started_at < b.started_at ? -1 : a.started_at > b.started_at ? 1 : a.deploy_id < b.deploy_id ? -1 : 1,
  );
}

export async function showDeploy(opts: EngineOptions, deployId: string): Promise<DeployDetail> {
  const status = await opts.store.getStatus(deployId);
  if (status === null) {
    throw new PloyzError('NOT_FOUND', `no deploy '${deployId}'; list deploys with \`ployzctl deploy ls\``, {
      details: { deploy_id: deployId },
    });
  }
  const [phases, commits] = await Promise.all([
    opts.store.listPhases(deployId),
    opts.store.listCommits(status.namespace),
  ]);
  return {
    status,
    phases: phases.sort((a, b) => a.index - b.index),
    commits: commits.filter((c) => c.deploy_id === deployId),
  };
}

/** The manifest that restores what `deployId` committed. */
export async function rollbackManifest(opts: EngineOptions, deployId: string): Promise<DeployManifest> {
  const detail = await showDeploy(opts, deployId);
  const { status, commits } = detail;
  if (commits.length === 0) {
    throw new PloyzError(
      'ROLLBACK_INVALID',
      `deploy '${deployId}' is ${status.state} and committed nothing, so there is nothing to restore; pick a committed deploy from \`ployzctl deploy ls\``,
      { details: { deploy_id: deployId, state: status.state } },
    );
  }
  const services = [];
  for (const cs of servicesOfDeploy(commits, deployId)) {
    const revision = await opts.store.getRevision(status.namespace, cs.service, cs.revision);
    if (revision === null) {
      throw new PloyzError(
        'ROLLBACK_INVALID',
        `revision ${cs.revision} of service '${cs.service}' is no longer stored; roll back by redeploying that manifest file`,
        {
          details: { deploy_id: deployId, revision: cs.revision },
        },
      );
    }
    services.push(opts.codec.fromRecord(revision));
  }
  const manifestHash = commits[0]?.manifest_hash ?? status.manifest_hash;
  return { namespace: status.namespace, services, phases: [], manifest_hash: manifestHash };
}
