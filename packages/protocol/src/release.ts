/**
 * The release: one version for the whole workspace (the root package.json's, which every app's
 * package.json repeats; `release.test.ts` holds them together), the images `scripts/images.sh`
 * tags with it, and where a ployzd finds the data-plane images of its own version
 * (docs/adr/0017-image-versions.md).
 */

/** This checkout's version: ployzd expects the data-plane images of exactly this version. */
export const PLOYZ_VERSION = '0.1.0';

/** The images scripts/images.sh labels, tags `<version>[-<rev>]` and pushes (`ployz/<name>`). */
export const RELEASED_IMAGES = [
  'base',
  'nats',
  'networking',
  'ployzd',
  'gateway',
  'dns',
  'ployzctl',
] as const;
export type ReleasedImage = (typeof RELEASED_IMAGES)[number];

/** The OCI labels every released image carries. */
export const OCI_LABELS = {
  version: 'org.opencontainers.image.version',
  revision: 'org.opencontainers.image.revision',
  source: 'org.opencontainers.image.source',
} as const;

/**
 * The reference of a released image: `<registry>/ployz/<name>:<version>` from a registry, or the
 * locally built `ployz/<name>:latest` when there is none (a build on this machine).
 */
export function releaseImageRef(
  name: ReleasedImage,
  registry: string | null,
  version = PLOYZ_VERSION,
): string {
  return registry === null ? `ployz/${name}:latest` : `${registry}/ployz/${name}:${version}`;
}

/**
 * A registry as `--registry` / `PLOYZ_IMAGE_REGISTRY` take it: `host[:port]`, the host with a dot,
 * a port or `localhost` (Docker's rule for the first path component), no scheme, no path. Returns
 * the canonical form, or a message saying what is wrong.
 */
export function parseRegistryHost(text: string): { ok: true; host: string } | { ok: false; message: string } {
  const host = text.trim().replace(/\/+$/, '');
  if (/^[a-z]+:\/\//i.test(host))
    return { ok: false, message: `takes host[:port], not a URL: ${host.replace(/^[a-z]+:\/\//i, '')}` };
  if (host.includes('/'))
    return { ok: false, message: `takes host[:port] with no path: ${host.split('/')[0]}` };
  const m = /^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)(?::(\d{1,5}))?$/.exec(host);
  if (m === null || Number(m[1] ?? 1) > 65535) return { ok: false, message: `${host} is not host[:port]` };
  if (!(host.includes('.') || host.includes(':') || host === 'localhost')) {
    return {
      ok: false,
      message: `${host} is not a registry host (it needs a dot, a port or localhost: ${host}:5000)`,
    };
  }
  return { ok: true, host };
}
