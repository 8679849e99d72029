/**
 * From the domain model (@ployz/types `Manifest`/`ServiceSpec`, @ployz/identity hashing and
 * sealing) to the engine's view (spec.ts), and the revision codec that stores specs sealed.
 */
import { join } from 'node:path';
import { type InstallationKey, manifestHash, revisionIdOf, sealSpec, unsealSpec } from '@ployz/identity';
import {
  type Manifest,
  PloyzError,
  type ServiceSpec,
  StoredServiceSpec,
  type VolumeSpec,
} from '@ployz/types';
import type { RevisionCodec } from './ports.ts';
import type { DeployManifest, DeployService, MountSpec, ReadinessSpec, RestartPolicy } from './spec.ts';

const RESTART: Record<ServiceSpec['restart'], RestartPolicy> = {
  always: 'always',
  unless_stopped: 'unless-stopped',
  on_failure: 'on-failure',
  never: 'no',
};

export function volumeDir(volumesRoot: string, namespace: string, volume: string): string {
  return join(volumesRoot, namespace, volume);
}

export function deployServiceOf(
  spec: ServiceSpec,
  volumes: readonly VolumeSpec[],
  volumesRoot: string,
): DeployService {
  const ports = Object.fromEntries(spec.ports.map((p) => [p.name, p.port]));
  const portOf = (name: string): number => {
    const port = ports[name];
    if (port === undefined)
      throw new PloyzError(
        'MANIFEST_INVALID',
        `service '${spec.name}' readiness names unknown port '${name}'`,
      );
    return port;
  };
  let readiness: ReadinessSpec | null = null;
  if (spec.readiness !== null) {
    const r = spec.readiness;
    const timing = {
      interval_ms: r.interval_ms,
      timeout_ms: r.timeout_ms,
      retries: r.retries,
      start_period_ms: r.start_period_ms,
    };
    readiness =
      r.kind === 'http'
        ? { kind: 'http', path: r.path, port: portOf(r.port), ...timing }
        : r.kind === 'tcp'
          ? { kind: 'tcp', port: portOf(r.port), ...timing }
          : { kind: 'exec', command: r.command, ...timing };
  }
  const mounts: MountSpec[] = spec.mounts.map((m) =>
    m.kind === 'volume'
      ? {
          kind: 'bind',
          source: volumeDir(volumesRoot, spec.namespace, m.volume),
          target: m.target,
          read_only: m.read_only,
          per_slot: volumes.find((v) => v.name === m.volume)?.scope === 'per_slot',
        }
      : { kind: 'tmpfs', target: m.target, size_bytes: m.size_bytes },
  );
  return {
    name: spec.name,
    image: spec.image,
    command: spec.command,
    entrypoint: spec.entrypoint,
    env: { ...spec.env },
    ports,
    readiness,
    placement: spec.placement,
    mounts,
    resources: {
      ...(spec.resources.cpus !== null ? { cpus: spec.resources.cpus } : {}),
      ...(spec.resources.memory_bytes !== null
        ? { memory_mb: Math.ceil(spec.resources.memory_bytes / 1048576) }
        : {}),
    },
    restart: RESTART[spec.restart],
    stop_grace_ms: spec.stop_grace_ms,
    source: spec as unknown as Record<string, unknown>,
  };
}

export function deployManifestOf(
  manifest: Manifest,
  key: InstallationKey,
  volumesRoot: string,
): DeployManifest {
  return {
    namespace: manifest.namespace,
    services: manifest.services.map((s) => deployServiceOf(s, manifest.volumes, volumesRoot)),
    phases: manifest.phases.map((p) => ({
      id: p.id,
      services: p.services,
      after: p.after,
      commit: p.commit_policy,
    })),
    manifest_hash: manifestHash(manifest, key),
  };
}

/** Revisions as @ployz/identity defines them: id over the sealed spec's digests, env sealed at rest. */
export function sealedRevisionCodec(key: InstallationKey, volumesRoot: string): RevisionCodec {
  return {
    revisionId(_namespace, service) {
      return revisionIdOf(service.source as unknown as ServiceSpec, key);
    },
    toRecord(namespace, service, at) {
      const spec = service.source as unknown as ServiceSpec;
      return {
        id: revisionIdOf(spec, key),
        namespace,
        service: service.name,
        spec: sealSpec(spec, key) as unknown as Record<string, unknown>,
        created_at: at,
      };
    },
    fromRecord(record) {
      const stored = StoredServiceSpec.safeParse(record.spec);
      if (!stored.success) {
        throw new PloyzError('STORE_CORRUPT', `revision ${record.id} does not hold a service spec`, {
          details: { revision: record.id },
        });
      }
      // Volume scopes are manifest-level; a restored revision uses single-scope directories.
      return deployServiceOf(unsealSpec(stored.data, key), [], volumesRoot);
    },
  };
}
