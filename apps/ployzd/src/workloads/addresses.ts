/**
 * Bridge addresses Ployz owns. Pure: a machine's /24 is split into three parts so Docker never
 * hands a system address to a workload, and a restarted engine gives every container its old one:
 *
 *   .0–.15    system (.1 the bridge gateway, .2 the networking container, the rest kept free)
 *   .16–.239  workloads, each a fixed address from `pickWorkloadAddress` (IPAMConfig.IPv4Address)
 *   .240–.255 Docker's own dynamic range (IPRange), for containers Ployz did not create
 */
import { PloyzError } from '@ployz/types';
import { formatIpv4, parseIpv4Cidr } from '../machine/address.ts';

const FIRST_WORKLOAD_HOST = 16;
const DYNAMIC_RANGE_HOST = 240;

function slash24(subnet: string): number {
  const cidr = parseIpv4Cidr(subnet);
  if (cidr.prefix !== 24) throw new PloyzError('CONFIG_INVALID', `${subnet} must be a /24`);
  return cidr.base;
}

/** The IPAM pool of a machine's bridge: Docker allocates dynamically only inside `IPRange`. */
export function bridgeIpam(subnet: string): { Subnet: string; Gateway: string; IPRange: string } {
  const base = slash24(subnet);
  return {
    Subnet: subnet,
    Gateway: formatIpv4(base + 1),
    IPRange: `${formatIpv4(base + DYNAMIC_RANGE_HOST)}/28`,
  };
}

/** The lowest workload address of `subnet` not in `used` (addresses of every container on the bridge). */
export function pickWorkloadAddress(subnet: string, used: ReadonlySet<string>): string {
  const base = slash24(subnet);
  for (let host = FIRST_WORKLOAD_HOST; host < DYNAMIC_RANGE_HOST; host++) {
    const address = formatIpv4(base + host);
    if (!used.has(address)) return address;
  }
  throw new PloyzError(
    'DEPLOY_NO_CAPACITY',
    `all ${DYNAMIC_RANGE_HOST - FIRST_WORKLOAD_HOST} workload addresses of ${subnet} are taken; remove instances or place them on another machine`,
    { details: { subnet } },
  );
}
