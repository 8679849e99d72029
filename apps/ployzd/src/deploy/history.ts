/**
 * History and rollback: list deploys, show one (status, phases, commits), and rebuild the
 * services a committed deploy left behind from stored revisions, as a manifest a new deploy
 * applies with `rollback_of` set. The cluster never silently rewinds: a rollback is a deploy.
 */
import { type DeployCommit, type DeployStatusRecord, type PhaseRecord, PloyzError } from '@ployz/types';
import type { EngineOptions } from './context.ts';
import { servicesOfDeploy } from './model/commits.ts';
import type { DeployManifest } from './model/spec.ts';

export interface DeployDetail {
  status: DeployStatusRecord;
  phases: PhaseRecord[];
  commits: DeployCommit[];
}

export interface DeployListOptions {
  namespace?: string | undefined;
  /** Page size (default {@link DEFAULT_DEPLOY_PAGE}). */
  limit?: number | undefined;
  /** Only deploys older than this one (the last id of the previous page). */
  before?: string | undefined;
}

export const DEFAULT_DEPLOY_PAGE = 20;

/**
 * One page of deploy statuses, newest first; `before` continues after the previous page's last
 * id. Deploy ids start with their creation time (@ployz/identity), so the ids alone give the
 * order: only the keys are listed, and only as many records are read as the page needs.
 */
export async function listDeploys(
  opts: EngineOptions,
  q: DeployListOptions = {},
): Promise<DeployStatusRecord[]> {
  const limit = q.limit ?? DEFAULT_DEPLOY_PAGE;
  if (q.before !== undefined && (await opts.store.getStatus(q.before)) === null) {
    throw new PloyzError(
      'NOT_FOUND',
      `no deploy '${q.before}' to page before; list deploys with \`ployzctl deploy ls\``,
      { details: { deploy_id: q.before } },
    );
  }
  const before = q.before;
  const ids = (await opts.store.listStatusIds())
    .filter((id) => before === undefined || id < before)
    .sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
  const page: DeployStatusRecord[] = [];
  // Read in batches; a namespace filter may need more than one.
  const batch = q.namespace === undefined ? limit : Math.max(limit, 100);
  for (let i = 0; i < ids.length && page.length < limit; i += batch) {
    const read = await Promise.all(
      ids.slice(i, i + batch).map(async (id) => (await opts.store.getStatus(id))?.value ?? null),
    );
    for (const s of read) {
      if (s === null || (q.namespace !== undefined && s.namespace !== q.namespace)) continue;
      if (page.length < limit) page.push(s);
    }
  }
  return page;
}

export async function showDeploy(opts: EngineOptions, deployId: string): Promise<DeployDetail> {
  const status = (await opts.store.getStatus(deployId))?.value ?? null;
  if (status === null) {
    throw new PloyzError('NOT_FOUND', `no deploy '${deployId}'; list deploys with \`ployzctl deploy ls\``, {
      details: { deploy_id: deployId },
    });
  }
  const [phases, commits] = await Promise.all([opts.store.listPhases(deployId), commitsOf(opts, status)]);
  return { status, phases: phases.map((p) => p.value).sort((a, b) => a.index - b.index), commits };
}

const SETTLED: ReadonlySet<DeployStatusRecord['state']> = new Set([
  'committed',
  'failed',
  'FailedAfterCheckpoint',
]);

/**
 * The commits of one deploy. A settled status lists every commit id (the apply writes each id
 * after its append, and crash recovery rewrites the list from the stream before settling), so
 * they are read by id; an unsettled one may trail an append, so the namespace is scanned.
 */
async function commitsOf(opts: EngineOptions, status: DeployStatusRecord): Promise<DeployCommit[]> {
  if (!SETTLED.has(status.state)) {
    const all = await opts.store.listCommits(status.namespace);
    return all.filter((c) => c.deploy_id === status.deploy_id);
  }
  const read = await Promise.all(status.commits.map((id) => opts.store.getCommit(status.namespace, id)));
  return read.filter((c): c is DeployCommit => c !== null);
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
  // The volume declarations the deploy committed (a revision stores its service alone).
  const volumes = [...new Map(commits.flatMap((c) => c.volumes).map((v) => [v.name, v])).values()];
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
    services.push(opts.codec.fromRecord(revision, volumes));
  }
  const manifestHash = commits[0]?.manifest_hash ?? status.manifest_hash;
  return { namespace: status.namespace, services, phases: [], volumes, manifest_hash: manifestHash };
}
