/**
 * Names of the JetStream assets (DESIGN.md §4) and the KV key scheme.
 *
 * KV keys and subjects are built from tokens joined by `.`, each escaped by @ployz/identity's
 * `escapeToken` (`[A-Za-z0-9_-]` kept, every other UTF-8 byte `=XX`; reversible).
 */
import { escapeToken, unescapeToken } from '@ployz/identity';
import { PloyzError } from '@ployz/types';

/** The token escape is @ployz/identity's (shared with @ployz/protocol's subjects). */
export { escapeToken, unescapeToken };

/** Joins escaped tokens into a key or subject. */
export function joinTokens(...tokens: string[]): string {
  return tokens.map(escapeToken).join('.');
}

/** Installation and authority names become parts of stream/bucket names: keep them plain. */
const SCOPE = /^[A-Za-z0-9_-]{1,64}$/;

export interface Scope {
  installation: string;
  authority: string;
}

export function validateScope(scope: Scope): Scope {
  for (const [what, value] of [
    ['installation', scope.installation],
    ['authority', scope.authority],
  ] as const) {
    if (!SCOPE.test(value)) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `${what} name '${value}' must be 1-64 characters of letters, digits, _ or -`,
        { details: { [what]: value } },
      );
    }
  }
  return scope;
}

/** The exact asset names of DESIGN.md §4 for one installation and authority. */
export function assetNames(scope: Scope) {
  const { installation: inst, authority: auth } = validateScope(scope);
  return {
    machines: `machines_${inst}`,
    invites: `invites_${inst}`,
    subnets: `subnets_${inst}`,
    deployCommits: `cp_deploy_commits_${auth}`,
    deployStatus: `cp_deploy_status_${auth}`,
    deployPhases: `cp_deploy_phases_${auth}`,
    revisions: `cp_revisions_${auth}`,
    releases: `cp_releases_${auth}`,
    instances: `cp_instances_${auth}`,
    volumes: `cp_volumes_${auth}`,
    locks: `cp_locks_${auth}`,
    routingEvents: `routing_events_${auth}`,
    // ployzd's own records (its ACME renewer, its registry credentials): in the store like the
    // rest, so they follow its replica count and a promotion carries them.
    acmeCerts: `acme_certs_${inst}`,
    acmeChallenges: `acme_challenges_${inst}`,
    acmeRenewals: `acme_renewals_${inst}`,
    acmeAccounts: `acme_accounts_${inst}`,
    registryAuth: `registry_auth_${inst}`,
  } as const;
}
export type AssetNames = ReturnType<typeof assetNames>;

/** Subject prefix `ployz.v1.<inst>.<auth>`. */
/**
 * The reply-inbox prefix of an edge identity's NATS connection (nats.js `inboxPrefix`). Its
 * permissions allow subscribing to this prefix only, so one component cannot read the replies
 * addressed to another (`_INBOX.>` would let it).
 */
export function inboxPrefixOf(identity: 'gateway' | 'dns'): string {
  return `_INBOX_${identity}`;
}

export function subjectPrefix(scope: Scope): string {
  const { installation, authority } = validateScope(scope);
  return `ployz.v1.${installation}.${authority}`;
}

/** Subjects of the two plain streams. */
export function streamSubjects(scope: Scope) {
  const prefix = subjectPrefix(scope);
  return {
    /** `…commits.<ns>.<commit id>`: one subject per commit, filterable per namespace. */
    commits: `${prefix}.commits`,
    routingEvents: `${prefix}.routing.events`,
  } as const;
}

/** KV key scheme, one function per bucket. */
export const keys = {
  machine: (machine: string) => joinTokens(machine),
  invite: (nonce: string) => joinTokens(nonce),
  /** `10.210.3.0/24` → `10-210-3-0`. */
  subnet: (subnet: string) => joinTokens(subnet.replace(/\/24$/, '').replaceAll('.', '-')),
  revision: (namespace: string, service: string, revision: string) =>
    joinTokens(namespace, service, revision),
  release: (namespace: string, service: string) => joinTokens(namespace, service),
  instance: (namespace: string, service: string, instance: string) =>
    joinTokens(namespace, service, instance),
  deployStatus: (deploy: string) => joinTokens(deploy),
  deployPhase: (deploy: string, phase: string) => joinTokens(deploy, phase),
  volume: (namespace: string, volume: string) => joinTokens(namespace, volume),
  deployLock: (namespace: string) => `cp.lock.deploy.${escapeToken(namespace)}`,
  /** Installation-wide: held briefly around each commit so two namespaces never claim one route. */
  routesLock: () => 'cp.lock.routes',
  commitSubject: (scope: Scope, namespace: string, commitId: string) =>
    `${streamSubjects(scope).commits}.${joinTokens(namespace, commitId)}`,
} as const;
