/**
 * `ployzctl ps`: per service its instances with the facts an operator asks first (machine,
 * state, ready and — when traffic does not reach it — the routable predicate's reason, revision,
 * deploy, ports). Pure: records in, the view out; the route reads the records.
 */
import type { PsInstance, PsService, PsView } from '@ployz/protocol';
import { unroutableReason } from '@ployz/routing';
import type { InstanceRecord, MachineRecord, ReleaseRecord } from '@ployz/types';

export interface PsInput {
  releases: readonly ReleaseRecord[];
  instances: readonly InstanceRecord[];
  machines: readonly MachineRecord[];
  at: string;
  namespace?: string | undefined;
}

const byKey = (namespace: string, service: string) => `${namespace}/${service}`;

/** Services sorted by namespace/service; instances by slot, the release's first, then by age. */
export function psView(input: PsInput): PsView {
  const wanted = (ns: string) => input.namespace === undefined || ns === input.namespace;
  const releases = new Map(
    input.releases.filter((r) => wanted(r.namespace)).map((r) => [byKey(r.namespace, r.service), r]),
  );
  const machines = new Map(input.machines.map((m) => [m.id, m]));
  const services = new Map<string, PsService>();
  for (const r of releases.values()) {
    services.set(byKey(r.namespace, r.service), {
      namespace: r.namespace,
      service: r.service,
      revision: r.revision,
      deploy: r.deploy,
      instances: [],
    });
  }
  for (const i of input.instances) {
    if (!wanted(i.namespace)) continue;
    const key = byKey(i.namespace, i.service);
    const release = releases.get(key);
    let service = services.get(key);
    if (service === undefined) {
      service = { namespace: i.namespace, service: i.service, revision: null, deploy: null, instances: [] };
      services.set(key, service);
    }
    service.instances.push(psInstance(i, release, machines.get(i.machine)));
  }
  const out = [...services.values()].sort((a, b) =>
    byKey(a.namespace, a.service).localeCompare(byKey(b.namespace, b.service)),
  );
  for (const s of out) {
    s.instances.sort(
      (a, b) =>
        a.slot - b.slot ||
        Number(b.active) - Number(a.active) ||
        a.created_at.localeCompare(b.created_at) ||
        a.instance.localeCompare(b.instance),
    );
  }
  return { at: input.at, services: out };
}

function psInstance(
  i: InstanceRecord,
  release: ReleaseRecord | undefined,
  machine: MachineRecord | undefined,
): PsInstance {
  const active = release?.slots.some((s) => s.instance === i.id) ?? false;
  return {
    instance: i.id,
    slot: i.slot,
    machine: i.machine,
    state: i.state,
    ready: i.ready,
    unroutable: unroutableReason(i, release, machine),
    active,
    revision: i.revision,
    deploy: i.deploy,
    ip: i.ip,
    ports: i.ports,
    created_at: i.created_at,
    error: i.error,
  };
}
