import type { InstanceRecord, MachineRecord, ReleaseRecord, RevisionRecord } from '@ployz/types';

const AT = '2026-01-01T00:00:00Z';

export function machine(id: string, overrides: Partial<MachineRecord> = {}): MachineRecord {
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
    ...overrides,
  };
}

export function revision(
  id: string,
  service: string,
  routes: unknown[],
  namespace = 'default',
): RevisionRecord {
  return { id, namespace, service, spec: { routes }, created_at: AT };
}

export function httpRoute(hostnames: string[], path = '/', port = 'http') {
  return { kind: 'http', hostnames, path, port };
}

export function instance(
  id: string,
  service: string,
  slot: number,
  rev: string,
  overrides: Partial<InstanceRecord> = {},
): InstanceRecord {
  return {
    id,
    namespace: 'default',
    service,
    slot,
    machine: 'm1',
    revision: rev,
    deploy: 'dep-1',
    container_id: `c-${id}`,
    ip: `10.210.1.${10 + slot}`,
    ip6: null,
    ports: { http: 8080 },
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: AT,
    updated_at: AT,
    ...overrides,
  };
}

export function release(
  service: string,
  rev: string,
  slots: { slot: number; instance: string; machine?: string }[],
  namespace = 'default',
): ReleaseRecord {
  return {
    namespace,
    service,
    revision: rev,
    deploy: 'dep-1',
    slots: slots.map((s) => ({ slot: s.slot, instance: s.instance, machine: s.machine ?? 'm1' })),
    updated_at: AT,
  };
}

export const REV_A = 'rev-aaaaaaaaaaaaaaaa';
export const REV_B = 'rev-bbbbbbbbbbbbbbbb';
