/**
 * Revisions: content-addressed ids over the service's domain spec (namespace and service name
 * included, so equal specs in two namespaces never share a record), and the stored record.
 * Uses @ployz/identity's canonical hashing and sealing when wired (daemon composition root);
 * `plainRevisionCodec` is the dependency-free fallback used by the engine's own tests.
 */
import { createHash } from 'node:crypto';
import type { RevisionRecord } from '@ployz/types';
import type { RevisionCodec } from './ports.ts';
import type { DeployService } from './spec.ts';

/** Sorted-key JSON; undefined dropped. Only for the fallback codec's hash. */
function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonical(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}

export function plainRevisionCodec(
  fromSpec: (spec: Record<string, unknown>) => DeployService,
): RevisionCodec {
  return {
    revisionId(namespace, service) {
      const hex = createHash('sha256')
        .update(canonical({ namespace, service: service.name, spec: service.source }))
        .digest('hex');
      return `rev-${hex.slice(0, 32)}`;
    },
    toRecord(namespace, service, at): RevisionRecord {
      return {
        id: this.revisionId(namespace, service),
        namespace,
        service: service.name,
        spec: structuredClone(service.source),
        created_at: at,
      };
    },
    fromRecord(record) {
      return fromSpec(record.spec);
    },
  };
}
