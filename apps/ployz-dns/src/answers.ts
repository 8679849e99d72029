/**
 * Compiles a DnsView into precomputed wire answers, and looks answers up for a query. Compiling
 * happens once per projection change; lookup is a string key and one or two map reads.
 */
import type { DnsNameRecords, DnsView } from '@ployz/routing';
import {
  encodeName,
  encodeRecord,
  ipv4Bytes,
  ipv6Bytes,
  nameKey,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  soaRdata,
  srvRdata,
  TYPE_A,
  TYPE_AAAA,
  TYPE_ANY,
  TYPE_SOA,
  TYPE_SRV,
  type WireAnswer,
} from './wire.ts';

/** Records are never cached: every change must be visible on the next query. */
export const RECORD_TTL = 0;

interface NameAnswers {
  byType: Map<number, WireAnswer>;
  nodata: WireAnswer;
}

export interface AnswerTable {
  seq: number;
  /** Name key (see questionKey) → answers. */
  names: Map<string, NameAnswers>;
  /** Caller source IP → wire form of its namespace label (`\x03ns1`). */
  callers: Map<string, string>;
  zoneSuffix: string;
  nxdomain: WireAnswer;
  /** Number of owner names, for status. */
  size: number;
}

/** Outcome of a lookup: a precomputed answer, or "not ours, forward it". */
export type Lookup = WireAnswer | null;

export function compileAnswers(view: DnsView): AnswerTable {
  const zoneWire = encodeName(view.zone);
  const soa = encodeRecord(
    zoneWire,
    TYPE_SOA,
    RECORD_TTL,
    soaRdata(`ns.${view.zone}`, `hostmaster.${view.zone}`, view.seq, RECORD_TTL),
  );
  const negative = (rcode: number): WireAnswer => ({
    rcode,
    authoritative: true,
    ancount: 0,
    nscount: 1,
    arcount: 0,
    body: soa,
  });
  const nodata = negative(RCODE_NOERROR);
  const names = new Map<string, NameAnswers>();
  for (const [name, records] of view.names) {
    const byType = new Map<number, WireAnswer>();
    const a = records.a.map((ip) => encodeRecord(null, TYPE_A, RECORD_TTL, ipv4Bytes(ip)));
    const aaaa = records.aaaa.map((ip) => encodeRecord(null, TYPE_AAAA, RECORD_TTL, ipv6Bytes(ip)));
    const srv = records.srv.map((r) =>
      encodeRecord(null, TYPE_SRV, RECORD_TTL, srvRdata(r.priority, r.weight, r.port, r.target)),
    );
    if (a.length > 0) byType.set(TYPE_A, positive(a, []));
    if (aaaa.length > 0) byType.set(TYPE_AAAA, positive(aaaa, []));
    if (srv.length > 0) byType.set(TYPE_SRV, positive(srv, srvAdditional(view, records)));
    const all = [...a, ...aaaa, ...srv];
    if (name === view.zone) {
      const apexSoa = encodeRecord(null, TYPE_SOA, RECORD_TTL, soa.subarray(zoneWire.length + 10));
      byType.set(TYPE_SOA, positive([apexSoa], []));
      all.push(apexSoa); // ANY at the apex holds the SOA, never NODATA
    }
    if (all.length > 0) byType.set(TYPE_ANY, positive(all, []));
    names.set(nameKey(name), { byType, nodata });
  }
  const callers = new Map<string, string>();
  for (const [ip, namespace] of view.callers) {
    const label = encodeName(namespace);
    callers.set(ip, label.toString('latin1', 0, label.length - 1));
  }
  return {
    seq: view.seq,
    names,
    callers,
    zoneSuffix: zoneWire.toString('latin1'),
    nxdomain: negative(RCODE_NXDOMAIN),
    size: view.names.size,
  };
}

function positive(answers: Buffer[], additional: Buffer[]): WireAnswer {
  return {
    rcode: RCODE_NOERROR,
    authoritative: true,
    ancount: answers.length,
    nscount: 0,
    arcount: additional.length,
    body: Buffer.concat([...answers, ...additional]),
  };
}

/** Address records of SRV targets, so a client needs no second query. */
function srvAdditional(view: DnsView, records: DnsNameRecords): Buffer[] {
  const out: Buffer[] = [];
  for (const target of new Set(records.srv.map((r) => r.target))) {
    const targetRecords = view.names.get(target);
    if (targetRecords === undefined) continue;
    const owner = encodeName(target);
    for (const ip of targetRecords.a) out.push(encodeRecord(owner, TYPE_A, RECORD_TTL, ipv4Bytes(ip)));
    for (const ip of targetRecords.aaaa) out.push(encodeRecord(owner, TYPE_AAAA, RECORD_TTL, ipv6Bytes(ip)));
  }
  return out;
}

/** An empty table (before the first projection): everything in the zone is SERVFAIL-worthy. */
export function emptyAnswers(zone: string): AnswerTable {
  return compileAnswers({ seq: 0, zone, names: new Map(), callers: new Map() });
}

/**
 * Finds the answer for a question key and qtype, from a caller at `sourceIp`.
 * - `<label>` (one label, outside the zone) and `<label>.<zone>` resolve in the caller's namespace.
 * - `_<port>._tcp.<svc>.<zone>` likewise.
 * - Other names in the zone answer from the table, NXDOMAIN when absent.
 * - Everything else returns null: forward it.
 */
export function lookup(table: AnswerTable, key: string, qtype: number, sourceIp: string): Lookup {
  const suffix = table.zoneSuffix;
  const inZone = key.endsWith(suffix) && isLabelBoundary(key, key.length - suffix.length);
  const firstLength = key.charCodeAt(0);
  if (inZone) {
    const relativeLength = key.length - suffix.length;
    if (relativeLength > 0 && isShortForm(key, firstLength, relativeLength)) {
      const namespace = table.callers.get(sourceIp);
      if (namespace !== undefined) {
        const expanded = table.names.get(key.slice(0, relativeLength) + namespace + suffix);
        if (expanded !== undefined) return pick(expanded, qtype);
      }
    }
    const direct = table.names.get(key);
    return direct === undefined ? table.nxdomain : pick(direct, qtype);
  }
  // A single label outside the zone: a short service name if the caller is an instance.
  if (firstLength > 0 && key.length === firstLength + 2) {
    const namespace = table.callers.get(sourceIp);
    if (namespace !== undefined) {
      const expanded = table.names.get(key.slice(0, -1) + namespace + suffix);
      if (expanded !== undefined) return pick(expanded, qtype);
    }
  }
  return null;
}

/**
 * True when a label starts at `at` in the wire-form key: the zone suffix must be whole labels, so
 * `\x06a\x05ployz\x08internal\x00` (one label holding the bytes `\x05ployz`) is not in the zone.
 */
function isLabelBoundary(key: string, at: number): boolean {
  let offset = 0;
  while (offset < at) offset += key.charCodeAt(offset) + 1;
  return offset === at;
}

/** `<svc>.` or `_<port>._tcp.<svc>.` before the zone. */
function isShortForm(key: string, firstLength: number, relativeLength: number): boolean {
  if (relativeLength === firstLength + 1) return true;
  if (key.charCodeAt(1) !== 0x5f /* _ */) return false;
  const second = firstLength + 1;
  if (key.slice(second, second + 5) !== '\x04_tcp') return false;
  const third = second + 5;
  return third < relativeLength && relativeLength === third + key.charCodeAt(third) + 1;
}

function pick(answers: NameAnswers, qtype: number): WireAnswer {
  return answers.byType.get(qtype) ?? answers.nodata;
}
