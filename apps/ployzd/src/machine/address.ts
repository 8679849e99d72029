/**
 * Pure address derivation for a machine: the overlay IPv6 address from its WireGuard public key
 * and its workload /24 from the cluster range. Deterministic, so a restart derives the same values.
 */
import { createHash } from 'node:crypto';
import { PloyzError } from '@ployz/types';

/** The overlay's /48 ULA prefix ("ployz" in the global id). */
export const DEFAULT_OVERLAY_PREFIX = 'fd70:6c6f:797a::/48';
export const DEFAULT_CLUSTER_RANGE = '10.210.0.0/16';

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Overlay IPv6 = the /48 prefix + the first 80 bits of sha256(public key). */
export function overlayAddress(publicKey: string, prefix: string = DEFAULT_OVERLAY_PREFIX): string {
  const [base, lenText] = prefix.split('/');
  if (base === undefined || lenText !== '48') {
    throw new PloyzError(
      'CONFIG_INVALID',
      `overlay prefix ${prefix} must be an IPv6 /48, e.g. ${DEFAULT_OVERLAY_PREFIX}`,
    );
  }
  const head = expandIpv6(base).slice(0, 3);
  const digest = sha256(publicKey);
  const tail: string[] = [];
  for (let i = 0; i < 5; i++) tail.push(digest.readUInt16BE(i * 2).toString(16));
  return [...head.map((h) => Number.parseInt(h, 16).toString(16)), ...tail].join(':');
}

function expandIpv6(address: string): string[] {
  const [left = '', right] = address.split('::');
  const l = left === '' ? [] : left.split(':');
  const r = right === undefined || right === '' ? [] : right.split(':');
  if (right === undefined && l.length !== 8)
    throw new PloyzError('CONFIG_INVALID', `${address} is not an IPv6 address`);
  const fill = new Array<string>(8 - l.length - r.length).fill('0');
  const groups = [...l, ...fill, ...r];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) {
    throw new PloyzError('CONFIG_INVALID', `${address} is not an IPv6 address`);
  }
  return groups;
}

export interface Ipv4Cidr {
  base: number;
  prefix: number;
}

export function parseIpv4Cidr(text: string): Ipv4Cidr {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  const octets = match?.slice(1, 5).map(Number) ?? [];
  const prefix = Number(match?.[5]);
  if (!match || octets.some((o) => o > 255) || prefix > 32) {
    throw new PloyzError('CONFIG_INVALID', `${text} is not an IPv4 CIDR like 10.210.0.0/16`);
  }
  const base = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - prefix);
  return { base: base - (base % size), prefix };
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** The machine's /24 inside the cluster range, picked by its public key. */
export function machineSubnet(publicKey: string, clusterRange: string = DEFAULT_CLUSTER_RANGE): string {
  const range = parseIpv4Cidr(clusterRange);
  if (range.prefix > 24) {
    throw new PloyzError('CONFIG_INVALID', `cluster range ${clusterRange} must be /24 or larger (e.g. /16)`);
  }
  const count = 2 ** (24 - range.prefix);
  const index = sha256(publicKey).readUInt32BE(0) % count;
  return `${formatIpv4(range.base + index * 256)}/24`;
}

/** Host address `n` inside a /24 (`.1` is the bridge gateway, `.2` the networking container). */
export function subnetHost(subnet: string, n: number): string {
  const cidr = parseIpv4Cidr(subnet);
  if (cidr.prefix !== 24) throw new PloyzError('CONFIG_INVALID', `${subnet} must be a /24`);
  return formatIpv4(cidr.base + n);
}
