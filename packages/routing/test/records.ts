/** Routing records for tests: the shared builders of @ployz/testkit, with routing's defaults. */
import { fixtures } from '@ployz/testkit';
import type {
  HttpRouteSpec,
  InstanceRecord,
  MachineRecord,
  ReleaseRecord,
  RevisionRecord,
  RouteSpec,
} from '@ployz/types';

export function machine(id: string, overrides: Partial<MachineRecord> = {}): MachineRecord {
  return fixtures.machine(id, overrides);
}

/** A revision of `namespace/service` whose stored spec has these routes (testkit's defaults otherwise). */
export function revision(
  id: string,
  service: string,
  routes: RouteSpec[],
  namespace = 'default',
): RevisionRecord {
  return fixtures.revision(id, {
    namespace,
    service,
    spec: fixtures.serviceSpec({ namespace, name: service, routes }),
  });
}

export function httpRoute(hostnames: string[], path = '/', port = 'http'): HttpRouteSpec {
  return { kind: 'http', hostnames, path, port };
}

export function instance(
  id: string,
  service: string,
  slot: number,
  rev: string,
  overrides: Partial<InstanceRecord> = {},
): InstanceRecord {
  return fixtures.instance(id, {
    namespace: 'default',
    service,
    slot,
    revision: rev,
    container_id: `c-${id}`,
    ip: `10.210.1.${10 + slot}`,
    ...overrides,
  });
}

export function release(
  service: string,
  rev: string,
  slots: { slot: number; instance: string; machine?: string }[],
  namespace = 'default',
): ReleaseRecord {
  return fixtures.release({
    namespace,
    service,
    revision: rev,
    slots: slots.map((s) => ({ slot: s.slot, instance: s.instance, machine: s.machine ?? 'm1' })),
  });
}

export const REV_A = 'rev-aaaaaaaaaaaaaaaa';
export const REV_B = 'rev-bbbbbbbbbbbbbbbb';
