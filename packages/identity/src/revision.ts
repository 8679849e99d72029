/**
 * Content addresses. A revision id names a service spec: sha256 over the canonical JSON of the
 * stored spec with env values replaced by their keyed digests, so it is independent of key order
 * and of TOML vs JSON source, stable across re-sealing, and never derived from plaintext alone.
 */
import type { Manifest, ServiceSpec, StoredServiceSpec } from '@ployz/types';
import { taggedHash } from './digest.ts';
import { type InstallationKey, redactSpec } from './sealed-secrets.ts';

/** 32 hex characters (128 bits) after `rev-`. */
const REVISION_HEX = 32;

export function revisionId(stored: StoredServiceSpec): string {
  return `rev-${taggedHash('ployz.revision.v1', redactSpec(stored)).slice(0, REVISION_HEX)}`;
}

/** The revision id a plaintext spec will have once sealed under `key` (no encryption done). */
export function revisionIdOf(spec: ServiceSpec, key: InstallationKey): string {
  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, key.macEnv(k, v)]));
  return `rev-${taggedHash('ployz.revision.v1', { ...spec, env }).slice(0, REVISION_HEX)}`;
}

/**
 * The manifest hash stored on deploy status and commits: over the namespace, volumes, phases and
 * each service's revision id (so secrets enter only through their keyed digests). 64 hex.
 */
export function manifestHash(manifest: Manifest, key: InstallationKey): string {
  return taggedHash('ployz.manifest.v1', {
    namespace: manifest.namespace,
    services: manifest.services.map((s) => ({ name: s.name, revision: revisionIdOf(s, key) })),
    volumes: manifest.volumes,
    phases: manifest.phases,
  });
}
