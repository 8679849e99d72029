/**
 * Where other machines reach this one: the WireGuard endpoint(s) written into its machine record
 * and the address of its join listener. Pure: the interface table is `os.networkInterfaces()`'s
 * shape, given by the caller.
 */
import { isIPv4 } from 'node:net';
import { formatHostPort, type HostPort, parseHostPort } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { parseIpv4Cidr } from '../machine/address.ts';

export interface InterfaceAddress {
  address: string;
  family: string | number;
  internal: boolean;
}
export type InterfaceTable = Record<string, InterfaceAddress[] | undefined>;

/** Interfaces that are this host's own plumbing, never how another machine reaches it. */
const LOCAL_ONLY = /^(lo|docker\d*|br-[0-9a-f]+|veth[0-9a-f]+|wg\d+)$/;

function insideCidr(address: string, cidr: string): boolean {
  const { base, prefix } = parseIpv4Cidr(cidr);
  const value = address.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const size = 2 ** (32 - prefix);
  return value - (value % size) === base;
}

/**
 * The machine's LAN address: the first IPv4 address, in interface order, that is not loopback,
 * not link-local, not on a Docker bridge or the Ployz bridge (`skipInterfaces`), and not inside
 * the workload range (`skipCidrs`). Null when there is none.
 */
export function lanAddress(
  table: InterfaceTable,
  skip: { interfaces?: readonly string[]; cidrs?: readonly string[] } = {},
): string | null {
  for (const [name, addresses] of Object.entries(table)) {
    if (LOCAL_ONLY.test(name) || skip.interfaces?.includes(name)) continue;
    for (const a of addresses ?? []) {
      const v4 = a.family === 'IPv4' || a.family === 4;
      if (!v4 || a.internal || !isIPv4(a.address)) continue;
      if (a.address.startsWith('127.') || a.address.startsWith('169.254.')) continue;
      if (skip.cidrs?.some((c) => insideCidr(a.address, c))) continue;
      return a.address;
    }
  }
  return null;
}

/**
 * `ip:port` or `[v6]:port` (@ployz/protocol's host:port form, the port required and not 0);
 * host names are refused: wg0 reports endpoints as addresses, and the mesh compares them.
 */
export function parseEndpoint(text: string): string {
  const bad = (why: string) =>
    new PloyzError(
      'INVALID_ARGUMENT',
      `endpoint '${text}': ${why}; give ip:port, e.g. 192.0.2.10:51820 or [2001:db8::1]:51820`,
      { details: { endpoint: text } },
    );
  if (!/:\d+$/.test(text.trim())) throw bad('no port');
  let hostPort: HostPort;
  try {
    hostPort = parseHostPort(text, 0);
  } catch (error) {
    throw bad(error instanceof Error ? error.message : String(error));
  }
  if (hostPort.port === 0) throw bad('port 0');
  return formatHostPort(hostPort);
}

/** `--endpoint` values, each possibly a comma list; deduplicated, order kept. */
export function parseEndpoints(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const value of values) {
    for (const part of value.split(',')) {
      if (part.trim() === '') continue;
      const endpoint = parseEndpoint(part);
      if (!out.includes(endpoint)) out.push(endpoint);
    }
  }
  return out;
}

/** The record's endpoints: the operator's, else `<LAN address>:<WireGuard port>`, else none. */
export function recordEndpoints(
  configured: readonly string[] | undefined,
  lan: string | null,
  wireguardPort: number,
): string[] {
  if (configured !== undefined && configured.length > 0) return [...configured];
  return lan === null ? [] : [`${lan}:${wireguardPort}`];
}
