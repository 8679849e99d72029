/**
 * Image references as Docker reads them (distribution/reference's grammar), and what a deploy
 * does about an image: one that names its registry (`registry.example.com/x:y`,
 * `127.0.0.1:5000/team/app:1.2`, `localhost:5000/app`) is pulled by the machine that runs it as
 * its `pull_policy` says; one without (`ployz/hello`, `postgres:16`) is the machine's own or sent
 * over the mesh from the coordinating machine (docs/adr/0016-images-over-the-mesh.md) — never
 * pulled from Docker Hub behind the user's back. Pure.
 */

export const PULL_POLICIES = ['if_not_present', 'always', 'never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];
export const DEFAULT_PULL_POLICY: PullPolicy = 'if_not_present';

export interface ImageRef {
  /** `host[:port]` as written (the first component, when it has a `.` or `:` or is `localhost`); null: none. */
  registry: string | null;
  /** The path after the registry, e.g. `team/app`. */
  repository: string;
  /** null: none written (Docker then means `latest`, unless a digest is given). */
  tag: string | null;
  /** `sha256:<hex>` when pinned by digest. */
  digest: string | null;
}

export type ImageRefResult = { ok: true; ref: ImageRef } | { ok: false; reason: string };

/** Docker's limit on a repository name (registry included). */
export const IMAGE_NAME_MAX = 255;

const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const PORT = /^[0-9]{1,5}$/;

/** Whether the first component of a name is a registry host (Docker's rule). */
export function looksLikeRegistry(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost';
}

function hostReason(host: string): string | null {
  const colon = host.lastIndexOf(':');
  const name = colon === -1 ? host : host.slice(0, colon);
  const port = colon === -1 ? null : host.slice(colon + 1);
  if (port !== null && (!PORT.test(port) || Number(port) < 1 || Number(port) > 65535))
    return `registry port "${port}" is not a number from 1 to 65535`;
  if (name.startsWith('[') && name.endsWith(']')) {
    return /^\[[0-9A-Fa-f:.]+\]$/.test(name) ? null : `registry host ${name} is not an IPv6 address`;
  }
  if (name === '' || !name.split('.').every((c) => DOMAIN_COMPONENT.test(c)))
    return `registry host "${name}" is not a host name or address`;
  return null;
}

/**
 * Parses `[registry/]repository[:tag][@digest]`; a reason when Docker would refuse it. The
 * reasons never repeat more of the reference than the part they are about.
 */
export function parseImageRef(text: string): ImageRefResult {
  const fail = (reason: string): ImageRefResult => ({ ok: false, reason });
  if (text.length === 0) return fail('an image reference is empty');
  if (/\s/.test(text)) return fail('an image reference contains no whitespace');
  let rest = text;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return fail(`"@${digest}" is not a digest like @sha256:<64 hex>`);
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      return fail(`tag "${tag}" is not letters, digits, _, . and - (at most 128, not starting with . or -)`);
  }
  if (rest.length === 0) return fail('an image reference names a repository before its tag or digest');
  if (rest.length > IMAGE_NAME_MAX) return fail(`the image name is longer than ${IMAGE_NAME_MAX} characters`);
  const slash = rest.indexOf('/');
  let registry: string | null = null;
  let repository = rest;
  if (slash !== -1 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    repository = rest.slice(slash + 1);
    const bad = hostReason(registry);
    if (bad !== null) return fail(bad);
  }
  if (repository.length === 0) return fail(`no repository after the registry ${registry ?? ''}`);
  for (const part of repository.split('/')) {
    if (!PATH_COMPONENT.test(part)) {
      return fail(
        part === ''
          ? 'the repository has an empty path component (a doubled or trailing /)'
          : /[A-Z]/.test(part)
            ? `repository component "${part}" has capital letters; Docker wants lowercase`
            : `repository component "${part}" is not lowercase letters and digits separated by ., _, __ or -`,
      );
    }
  }
  return { ok: true, ref: { registry, repository, tag, digest } };
}

/** The registry host an image names, or null (also for a reference that does not parse). */
export function registryOf(image: string): string | null {
  const parsed = parseImageRef(image);
  return parsed.ok ? parsed.ref.registry : null;
}

/**
 * What a deploy does about one image on one machine that gets a candidate, as a pure decision:
 * `mesh` — today's path (the machine's own image, or sent from the coordinating machine);
 * `present` — the machine holds it and the policy is content with that; `pull` — the machine
 * pulls it from its registry before anything of the deploy is written.
 */
export type PullDecision = 'mesh' | 'present' | 'pull';

export function pullDecision(
  image: string,
  policy: PullPolicy | undefined,
  heldOnMachine: boolean,
): PullDecision {
  const effective = policy ?? DEFAULT_PULL_POLICY;
  if (registryOf(image) === null || effective === 'never') return 'mesh';
  switch (effective) {
    case 'always':
      return 'pull';
    case 'if_not_present':
      return heldOnMachine ? 'present' : 'pull';
    default: {
      const unreachable: never = effective;
      return unreachable;
    }
  }
}
