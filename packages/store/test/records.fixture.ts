/** Valid records for the store tests: the shared builders of @ployz/testkit. */
import type { NatsConnection } from '@nats-io/transport-node';
import { fixtures } from '@ployz/testkit';
import { Store } from '../src/index.ts';

export const { AT, commit, deployStatus, instance, machine, phase, release, revision, serviceSpec, volume } =
  fixtures;

export const SCOPE = { installation: 'local', authority: 'auth-default' } as const;

/**
 * A store at R3 on `nc`: the assets created with the default request timeout (on a loaded machine
 * an R3 stream's creation waits for its group's election), then used through `requestTimeoutMs`.
 */
export async function storeAtR3(nc: NatsConnection, requestTimeoutMs: number): Promise<Store> {
  await Store.fromConnection(nc, { ...SCOPE, replicas: 3 });
  return Store.fromConnection(nc, { ...SCOPE, replicas: 3, requestTimeoutMs, ensure: false });
}
