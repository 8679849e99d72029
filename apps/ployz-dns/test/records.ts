/** Routing records for ployz-dns tests: a tiny cluster described by namespace → service → instances. */
import { fixtures } from '@ployz/testkit';
import type { InstanceRecord, MachineRecord, ReleaseRecord, RoutingSnapshot } from '@ployz/types';

export const REV = 'rev-aaaaaaaaaaaaaaaa';

export interface InstanceSpec {
  id: string;
  ip: string | null;
  ip6?: string | null;
  ports?: Record<string, number>;
  ready?: boolean;
}

export function machineRecord(id = 'm1'): MachineRecord {
  return fixtures.machine(id);
}

export function instanceRecord(
  namespace: string,
  service: string,
  slot: number,
  spec: InstanceSpec,
): InstanceRecord {
  return fixtures.instance(spec.id, {
    namespace,
    service,
    slot,
    revision: REV,
    container_id: `c-${spec.id}`,
    ip: spec.ip,
    ip6: spec.ip6 ?? null,
    ports: spec.ports ?? {},
    ready: spec.ready ?? true,
  });
}

export function releaseRecord(
  namespace: string,
  service: string,
  instances: InstanceRecord[],
): ReleaseRecord {
  return fixtures.release({
    namespace,
    service,
    revision: REV,
    slots: instances.map((i) => ({ slot: i.slot, machine: i.machine, instance: i.id })),
  });
}

/** A snapshot from `{ ns: { svc: [instances] } }`; each service's instances get slots 0..n-1. */
export function cluster(spec: Record<string, Record<string, InstanceSpec[]>>): Omit<RoutingSnapshot, 'seq'> {
  const releases: ReleaseRecord[] = [];
  const instances: InstanceRecord[] = [];
  for (const [namespace, services] of Object.entries(spec)) {
    for (const [service, specs] of Object.entries(services)) {
      const records = specs.map((s, slot) => instanceRecord(namespace, service, slot, s));
      instances.push(...records);
      releases.push(releaseRecord(namespace, service, records));
    }
  }
  return { machines: [machineRecord()], revisions: [], releases, instances };
}
