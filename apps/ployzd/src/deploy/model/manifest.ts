/**
 * From the domain model (@ployz/types `Manifest`/`ServiceSpec`, @ployz/identity hashing and
 * sealing) to the engine's view (spec.ts; each service by the participant's `deployServiceOf`),
 * and the revision codec that stores specs sealed.
 */
import { type InstallationKey, manifestHash, revisionIdOf, sealSpec, unsealSpec } from '@ployz/identity';
import { type Manifest, PloyzError, StoredServiceSpec } from '@ployz/types';
import { deployServiceOf } from '../../workloads/start-request.ts';
import type { RevisionCodec } from '../ports.ts';
import type { DeployManifest } from './spec.ts';

// The participant turns a manifest service into the service a start runs; the coordinator too.
export { deployServiceOf, volumeDir } from '../../workloads/start-request.ts';

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
    volumes: manifest.volumes,
    manifest_hash: manifestHash(manifest, key),
  };
}

/** Revisions as @ployz/identity defines them: id over the sealed spec's digests, env sealed at rest. */
export function sealedRevisionCodec(key: InstallationKey, volumesRoot: string): RevisionCodec {
  return {
    revisionId(_namespace, service) {
      return revisionIdOf(service.source, key);
    },
    toRecord(namespace, service, at) {
      const spec = service.source;
      return {
        id: revisionIdOf(spec, key),
        namespace,
        service: service.name,
        spec: sealSpec(spec, key),
        created_at: at,
      };
    },
    fromRecord(record, volumes = []) {
      const stored = StoredServiceSpec.safeParse(record.spec);
      if (!stored.success) {
        throw new PloyzError('STORE_CORRUPT', `revision ${record.id} does not hold a service spec`, {
          details: { revision: record.id },
        });
      }
      return deployServiceOf(unsealSpec(stored.data, key), volumes, volumesRoot);
    },
    manifestOf(manifest) {
      return deployManifestOf(manifest, key, volumesRoot);
    },
  };
}
