/**
 * Names of the JetStream assets (DESIGN.md §4) and the KV key scheme.
 *
 * KV keys and subjects are built from tokens joined by `.`. A token keeps `[A-Za-z0-9_-]` as is;
 * every other byte (UTF-8) is written `=XX` (upper-case hex), so `=` itself becomes `=3D`. The
 * escape is reversible and the result is always a valid NATS subject token and KV key part.
 */
import { PloyzError } from '@ployz/types';

const SAFE = /^[A-Za-z0-9_-]$/;
const ALL_SAFE = /^[A-Za-z0-9_-]+$/;

export function escapeToken(token: string): string {
  if (token.length === 0) {
    throw new PloyzError('INVALID_ARGUMENT', 'an empty name cannot be used as a key or subject token');
  }
  if (ALL_SAFE.test(token)) return token;
  let out = '';
  for (const ch of token) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) {
      out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

export function unescapeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i];
    if (ch === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (ch !== undefined) {
      bytes.push(ch.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

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
    deployCommits: `cp_deploy_commits_${auth}`,
    deployStatus: `cp_deploy_status_${auth}`,
    deployPhases: `cp_deploy_phases_${auth}`,
    revisions: `cp_revisions_${auth}`,
    releases: `cp_releases_${auth}`,
    instances: `cp_instances_${auth}`,
    volumes: `cp_volumes_${auth}`,
    locks: `cp_locks_${auth}`,
    routingEvents: `routing_events_${auth}`,
  } as const;
}
export type AssetNames = ReturnType<typeof assetNames>;

/** Subject prefix `ployz.v1.<inst>.<auth>`. */
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
  revision: (namespace: string, service: string, revision: string) =>
    joinTokens(namespace, service, revision),
  release: (namespace: string, service: string) => joinTokens(namespace, service),
  instance: (namespace: string, service: string, instance: string) =>
    joinTokens(namespace, service, instance),
  deployStatus: (deploy: string) => joinTokens(deploy),
  deployPhase: (deploy: string, phase: string) => joinTokens(deploy, phase),
  volume: (namespace: string, volume: string) => joinTokens(namespace, volume),
  deployLock: (namespace: string) => `cp.lock.deploy.${escapeToken(namespace)}`,
  commitSubject: (scope: Scope, namespace: string, commitId: string) =>
    `${streamSubjects(scope).commits}.${joinTokens(namespace, commitId)}`,
} as const;
