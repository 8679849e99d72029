/**
 * The DNS projection: a pure function from durable routing records to the names ployz-dns
 * answers for. It knows nothing about the wire; the app compiles this view into precomputed
 * answers.
 *
 * Zone `ployz.internal` (all names lowercase, without the trailing dot):
 * - `<svc>.<ns>.ployz.internal`             A/AAAA of the routable instances of the service
 * - `<instance>.<svc>.<ns>.ployz.internal`  A/AAAA of one routable instance
 * - `_<port>._tcp.<svc>.<ns>.ployz.internal` SRV per routable instance for each named port
 * - empty non-terminals (`<ns>.ployz.internal`, `_tcp.<svc>.<ns>.ployz.internal`) exist with
 *   no records, so they answer NODATA rather than NXDOMAIN.
 * Short names (`<svc>`, `<svc>.ployz.internal`) are resolved by the server in the caller's
 * namespace, which `callers` maps from the source IP of the query.
 */
import type { ReleaseRecord } from '@ployz/types';
import { isRoutable } from './routable.ts';
import { type RoutingState, serviceKey } from './state.ts';

export const DNS_ZONE = 'ployz.internal';

export interface DnsSrvRecord {
  priority: number;
  weight: number;
  port: number;
  /** Fully qualified target, lowercase, no trailing dot: `<instance>.<svc>.<ns>.ployz.internal`. */
  target: string;
}

/** Records of one owner name. A name with no records is an empty non-terminal (NODATA). */
export interface DnsNameRecords {
  a: string[];
  aaaa: string[];
  srv: DnsSrvRecord[];
}

export interface DnsView {
  /** Routing-event sequence this view reflects. */
  seq: number;
  zone: string;
  /** Owner name (lowercase, no trailing dot) → records. Includes the apex and non-terminals. */
  names: Map<string, DnsNameRecords>;
  /** Source IP of a caller (an instance's ip or ip6) → the namespace that instance belongs to. */
  callers: Map<string, string>;
}

function emptyRecords(): DnsNameRecords {
  return { a: [], aaaa: [], srv: [] };
}

/**
 * Builds the DNS view of the routing records, using the shared routable predicate. Pure: same
 * input, same output (instances are visited in id order).
 */
export function projectDns(state: RoutingState, zone: string = DNS_ZONE): DnsView {
  const names = new Map<string, DnsNameRecords>();
  const ensure = (name: string): DnsNameRecords => {
    let records = names.get(name);
    if (records === undefined) {
      records = emptyRecords();
      names.set(name, records);
    }
    return records;
  };
  ensure(zone);

  for (const release of state.releases.values()) {
    ensure(`${release.namespace}.${zone}`);
    ensure(`${release.service}.${release.namespace}.${zone}`);
  }

  const callers = new Map<string, string>();
  // Stable order so the projection (and the compiled answers) do not depend on input order.
  const instances = [...state.instances.values()].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  for (const instance of instances) {
    // The caller map covers every live instance that owns an address, routable or not: a
    // starting instance must already resolve its own namespace's short names.
    if (instance.state !== 'stopped' && instance.state !== 'failed') {
      if (instance.ip !== null) callers.set(instance.ip, instance.namespace);
      if (instance.ip6 !== null) callers.set(normaliseIp6(instance.ip6), instance.namespace);
    }
    const release: ReleaseRecord | undefined = state.releases.get(
      serviceKey(instance.namespace, instance.service),
    );
    if (!isRoutable(instance, release, state.machines.get(instance.machine))) continue;

    const serviceName = `${instance.service}.${instance.namespace}.${zone}`;
    const instanceName = `${instance.id}.${serviceName}`;
    const service = ensure(serviceName);
    const own = ensure(instanceName);
    if (instance.ip !== null) {
      service.a.push(instance.ip);
      own.a.push(instance.ip);
    }
    if (instance.ip6 !== null) {
      service.aaaa.push(instance.ip6);
      own.aaaa.push(instance.ip6);
    }
    const portNames = Object.keys(instance.ports).sort();
    if (portNames.length > 0) ensure(`_tcp.${serviceName}`);
    for (const portName of portNames) {
      const port = instance.ports[portName];
      if (port === undefined) continue;
      ensure(`_${portName}._tcp.${serviceName}`).srv.push({
        priority: 0,
        weight: 10,
        port,
        target: instanceName,
      });
    }
  }
  for (const records of names.values()) {
    records.a = dedupe(records.a);
    records.aaaa = dedupe(records.aaaa);
  }
  return { seq: state.seq, zone, names, callers };
}

function dedupe(values: string[]): string[] {
  return values.length < 2 ? values : [...new Set(values)];
}

/**
 * Canonical text of an IPv6 address (RFC 5952: lowercase, zeros compressed), the form a socket
 * reports as the query's source, so `fd00:0:0::0010` in a record matches `fd00::10`.
 */
function normaliseIp6(ip: string): string {
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
}
