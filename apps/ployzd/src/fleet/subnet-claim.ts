/**
 * A joining machine's workload /24: the first one of the cluster range that no machine record
 * and no claim holds, taken by creating its claim (compare-and-set: a create loses to any other
 * create of the same key), so two joins at once end with two different /24s.
 */
import type { Store } from '@ployz/store';
import { isPloyzError, PloyzError } from '@ployz/types';
import { formatIpv4, parseIpv4Cidr } from '../machine/address.ts';

/** The /24s of `clusterRange` in order, skipping `taken`. Pure. */
export function* freeSubnets(clusterRange: string, taken: ReadonlySet<string>): Generator<string> {
  const range = parseIpv4Cidr(clusterRange);
  if (range.prefix > 24) {
    throw new PloyzError('CONFIG_INVALID', `cluster range ${clusterRange} must be /24 or larger (e.g. /16)`);
  }
  const count = 2 ** (24 - range.prefix);
  for (let i = 0; i < count; i++) {
    const subnet = `${formatIpv4(range.base + i * 256)}/24`;
    if (!taken.has(subnet)) yield subnet;
  }
}

export interface Claimed {
  subnet: string;
  /** Gives the /24 back (the join failed after the claim). */
  release(): Promise<void>;
}

export async function claimSubnet(
  store: Store,
  machine: string,
  clusterRange: string,
  now: Date,
): Promise<Claimed> {
  for (let round = 0; round < 3; round++) {
    const [machines, claims] = await Promise.all([store.machines.list(), store.subnets.list()]);
    const taken = new Set([...machines.map((m) => m.value.subnet), ...claims.map((c) => c.value.subnet)]);
    for (const subnet of freeSubnets(clusterRange, taken)) {
      try {
        const written = await store.subnets.create({ subnet, machine, claimed_at: now.toISOString() });
        return {
          subnet,
          release: () => store.subnets.delete(written.key, written.revision),
        };
      } catch (error) {
        if (isPloyzError(error, 'STORE_CONFLICT')) continue; // another join took it: the next one
        throw error;
      }
    }
  }
  throw new PloyzError(
    'CONFIG_INVALID',
    `the cluster range ${clusterRange} has no free /24 left; nothing was changed`,
    { details: { cluster_range: clusterRange } },
  );
}
