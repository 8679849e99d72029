/** Records and services for the engine's tests (pure data, no I/O). */
import type { MachineRecord, RegionRole } from '@ployz/types';
import type { MachineCapacity } from './placement.ts';
import type { DeployService } from './spec.ts';

export function machine(
  id: string,
  region = 'r1',
  role: RegionRole = 'home_data',
  lifecycle: MachineRecord['lifecycle'] = 'active',
): MachineRecord {
  return {
    id,
    public_key: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
    overlay_ip: 'fd00::1',
    subnet: '10.210.1.0/24',
    endpoints: [],
    region,
    region_role: role,
    lifecycle,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
  };
}

export function capacityOf(machines: readonly MachineRecord[], memory = 4096): Map<string, MachineCapacity> {
  return new Map(machines.map((m) => [m.id, { cpus: 2, memory_free_mb: memory, disk_free_mb: 10_000 }]));
}

/** A service whose `source` is its own fields, so changing any field changes its revision. */
export function service(
  name: string,
  overrides: Partial<Omit<DeployService, 'source' | 'name'>> = {},
): DeployService {
  const base: Omit<DeployService, 'source'> = {
    name,
    image: 'ployz/hello:1',
    command: null,
    entrypoint: null,
    env: {},
    ports: { http: 8080 },
    readiness: null,
    placement: { mode: 'replicated', replicas: 1, regions: [] },
    mounts: [],
    resources: {},
    restart: 'unless-stopped',
    stop_grace_ms: 1000,
    ...overrides,
  };
  return { ...base, source: JSON.parse(JSON.stringify(base)) as Record<string, unknown> };
}

/** The inverse of `service()`'s source, for the plain codec in tests. */
export function serviceFromSource(spec: Record<string, unknown>): DeployService {
  return { ...(spec as unknown as Omit<DeployService, 'source'>), source: structuredClone(spec) };
}
