/**
 * Records and services for the engine's tests. A sample service is a real manifest ServiceSpec
 * mapped by the production adapter (model/manifest.ts), and `testCodec` is the production
 * (sealed) revision codec, so the revision ids the tests see are the ones the daemon stores.
 */
import { InstallationKey } from '@ployz/identity';
import { fixtures } from '@ployz/testkit';
import type { InstanceRecord, MachineRecord, RegionRole, RouteSpec, ServiceSpec } from '@ployz/types';
import { deployServiceOf, sealedRevisionCodec } from '../../src/deploy/model/manifest.ts';
import type { MachineCapacity } from '../../src/deploy/model/placement.ts';
import type { DeployService } from '../../src/deploy/model/spec.ts';
import type { RevisionCodec } from '../../src/deploy/ports.ts';

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

/** A running, ready instance of `shop/web` on m1 in slot 0 (override any field). */
export function instanceRecord(id: string, over: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    namespace: 'shop',
    service: 'web',
    slot: 0,
    machine: 'm1',
    revision: 'rev-a',
    deploy: 'dep-1',
    container_id: `c${id}`,
    ip: '10.0.0.20',
    ip6: null,
    ports: {},
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: '2026-01-01T00:00:00.000Z',
    updated_at: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

export function capacityOf(machines: readonly MachineRecord[], memory = 4096): Map<string, MachineCapacity> {
  return new Map(machines.map((m) => [m.id, { cpus: 2, memory_free_mb: memory, disk_free_mb: 10_000 }]));
}

/** Volumes of sample services live here (never created: the fakes start no containers). */
export const TEST_VOLUMES_ROOT = '/var/lib/ployz-test/volumes';

/** One key per test process: revision ids are stable within a run. */
export const testKey = InstallationKey.generate();

/** The daemon's codec (revision ids over the sealed spec, @ployz/identity) under the test key. */
export function testCodec(): RevisionCodec {
  return sealedRevisionCodec(testKey, TEST_VOLUMES_ROOT);
}

type SpecFields = 'image' | 'command' | 'entrypoint' | 'env' | 'placement' | 'stop_grace_ms';

export type ServiceOverrides = Partial<Omit<DeployService, 'source' | 'name'>> & {
  /** The namespace of the manifest service (hashed into its revision); default `shop`. */
  namespace?: string;
  routes?: RouteSpec[];
};

/**
 * A service of namespace `shop` (unless given). The fields a manifest spec shares with the
 * engine's view (image, env, placement…) go into both, so changing one changes the revision; the
 * engine-only ones (resolved readiness, mounts…) override the mapped view only.
 */
export function service(name: string, overrides: ServiceOverrides = {}): DeployService {
  const { namespace = 'shop', routes = [], ...view } = overrides;
  const shared: Partial<Pick<ServiceSpec, SpecFields>> = {};
  for (const k of ['image', 'command', 'entrypoint', 'env', 'placement', 'stop_grace_ms'] as const) {
    if (view[k] !== undefined) Object.assign(shared, { [k]: view[k] });
  }
  // testkit's stored spec with plaintext env: the manifest's ServiceSpec.
  const spec: ServiceSpec = {
    ...fixtures.serviceSpec({ namespace, name, image: 'ployz/hello:1', routes, stop_grace_ms: 1000 }),
    env: {},
    ...shared,
  };
  return { ...deployServiceOf(spec, [], TEST_VOLUMES_ROOT), ...view };
}
