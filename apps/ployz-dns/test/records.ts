/** Routing records for ployz-dns tests: a tiny cluster described by namespace → service → instances. */
import type { InstanceRecord, MachineRecord, ReleaseRecord, RoutingSnapshot } from '@ployz/types';

const AT = '2026-01-01T00:00:00Z';
export const REV = 'rev-aaaaaaaaaaaaaaaa';

export interface InstanceSpec {
  id: string;
  ip: string | null;
  ip6?: string | null;
  ports?: Record<string, number>;
  ready?: boolean;
}

export function machineRecord(id = 'm1'): MachineRecord {
  return {
    id,
    public_key: `${'A'.repeat(43)}=`,
    overlay_ip: 'fd00::1',
    subnet: '10.210.1.0/24',
    endpoints: ['127.0.0.1:51820'],
    region: 'local',
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: AT,
    updated_at: AT,
  };
}

export function instanceRecord(
  namespace: string,
  service: string,
  slot: number,
  spec: InstanceSpec,
): InstanceRecord {
  return {
    id: spec.id,
    namespace,
    service,
    slot,
    machine: 'm1',
    revision: REV,
    deploy: 'dep-1',
    container_id: `c-${spec.id}`,
    ip: spec.ip,
    ip6: spec.ip6 ?? null,
    ports: spec.ports ?? {},
    state: 'running',
    ready: spec.ready ?? true,
    draining: false,
    error: null,
    created_at: AT,
    updated_at: AT,
  };
}

export function releaseRecord(
  namespace: string,
  service: string,
  instances: InstanceRecord[],
): ReleaseRecord {
  return {
    namespace,
    service,
    revision: REV,
    deploy: 'dep-1',
    slots: instances.map((i) => ({ slot: i.slot, machine: i.machine, instance: i.id })),
    updated_at: AT,
  };
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
