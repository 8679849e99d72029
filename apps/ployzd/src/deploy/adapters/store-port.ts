/**
 * The DeployStore port on the real @ployz/store (NATS JetStream). Every KV write is the
 * store's compare-and-set at the revision the caller read (`save(record, expectedRevision)`,
 * `delete(key, expectedRevision)`): a lost race is STORE_CONFLICT, never an overwrite. Only
 * instance deletion re-reads and retries (`discard`), because the facts loop may mark a
 * stopping instance's record and removing it is the intent either way.
 */
import {
  assertNotPromoting,
  escapeToken,
  FENCE_KEY,
  type Lease,
  type Store,
  unescapeToken,
} from '@ployz/store';
import { type DeployCommit, isPloyzError, type LeaseRecord, type RoutingEvent } from '@ployz/types';
import type { DeployStore, HeldLease } from '../ports.ts';
import { NO_STORE_RETRY, type StoreRetryPolicy, sameRecord, withStoreRetry } from './store-retry.ts';

export function storeDeployPort(store: Store, policy: StoreRetryPolicy = NO_STORE_RETRY): DeployStore {
  const retry = <T>(what: string, call: () => Promise<T>, applied?: () => Promise<{ value: T } | null>) =>
    withStoreRetry(policy, what, call, applied);
  /** A compare-and-set record write; after an unconfirmed attempt, ours if read back equal. */
  const saved = <R extends object>(
    bucket: {
      save(r: R, rev: number | null): Promise<{ revision: number }>;
      keyOf(r: R): string;
      getByKey(k: string): Promise<{ value: unknown; revision: number } | null>;
    },
    record: R,
    expectedRevision: number | null,
  ) =>
    retry(
      `writing ${bucket.keyOf(record)}`,
      async () => (await bucket.save(record, expectedRevision)).revision,
      async () => {
        const current = await bucket.getByKey(bucket.keyOf(record));
        return current !== null && sameRecord(current.value, record) ? { value: current.revision } : null;
      },
    );
  return {
    async listMachines() {
      return retry('listing machines', async () => (await store.machines.list()).map((v) => v.value));
    },
    async getStatus(id) {
      return retry('reading a deploy status', () => store.deployStatus.get(id));
    },
    async putStatus(record, expectedRevision) {
      return saved(store.deployStatus, record, expectedRevision);
    },
    async listStatuses(namespace) {
      const all = await retry('listing deploy statuses', () => store.deployStatus.list());
      return namespace === undefined ? all : all.filter((s) => s.value.namespace === namespace);
    },
    async listStatusIds() {
      // Deleted statuses (none today) would read as null and be skipped by the page.
      return (await retry('listing deploy ids', () => store.deployStatus.storedKeys())).map(unescapeToken);
    },
    async putPhase(record, expectedRevision) {
      return saved(store.deployPhases, record, expectedRevision);
    },
    async listPhases(deployId) {
      return retry('listing phases', () => store.deployPhases.list(`${escapeToken(deployId)}.>`));
    },
    async appendCommit(commit: DeployCommit) {
      // Identical commit twice = a no-op: an append applied before its answer was lost is fine.
      await retry(`appending commit ${commit.id}`, () => store.commits.append(commit));
    },
    async listCommits(namespace) {
      return (await retry('listing commits', () => store.commits.list(namespace))).map((c) => c.commit);
    },
    async getCommit(namespace, commitId) {
      return (await retry('reading a commit', () => store.commits.get(namespace, commitId)))?.commit ?? null;
    },
    async putRevision(record) {
      // Content-addressed: a create refused because the id exists means it is stored already
      // (one round trip, not a read and then a write).
      await retry('storing a revision', () =>
        store.revisions.create(record).catch((err: unknown) => {
          if (!isPloyzError(err, 'STORE_CONFLICT')) throw err;
          return null;
        }),
      );
    },
    async getRevision(namespace, service, id) {
      return (
        (await retry('reading a revision', () => store.revisions.get(namespace, service, id)))?.value ?? null
      );
    },
    async listReleases(namespace) {
      return retry('listing releases', () =>
        store.releases.list(namespace === undefined ? '>' : `${escapeToken(namespace)}.>`),
      );
    },
    async putRelease(record, expectedRevision) {
      return saved(store.releases, record, expectedRevision);
    },
    async deleteRelease(namespace, service, expectedRevision) {
      const key = store.releases.key(namespace, service);
      await retry(
        `deleting release ${key}`,
        () => store.releases.delete(key, expectedRevision),
        async () => ((await store.releases.getByKey(key)) === null ? { value: undefined } : null),
      );
    },
    async listInstances(namespace) {
      return retry('listing instances', () =>
        store.instances.list(namespace === undefined ? '>' : `${escapeToken(namespace)}.>`),
      );
    },
    async getInstance(namespace, service, id) {
      return retry('reading an instance', () => store.instances.get(namespace, service, id));
    },
    async putInstance(record, expectedRevision) {
      return saved(store.instances, record, expectedRevision);
    },
    async deleteInstance(record) {
      await retry(`removing instance ${record.id}`, () =>
        store.instances.discard([record.namespace, record.service, record.id]),
      );
    },
    async acquireLease(key, owner, ttlMs, purpose): Promise<HeldLease> {
      let lease: Lease = await store.leases.acquire(key, { owner, ttlMs, purpose });
      // A namespace deploy lease, then the store promotion record (issue 19): a promotion writes
      // its record first and checks the deploy leases second, so one of the two sees the other.
      // Deploys, rollbacks and namespace removals all take this lease: refused with STORE_PROMOTING.
      if (key.startsWith('cp.lock.deploy.')) {
        try {
          await assertNotPromoting(store.nc, store.scope);
        } catch (err) {
          await store.leases.release(lease).catch(() => {});
          throw err;
        }
      }
      return {
        get record() {
          return lease.record;
        },
        async renew() {
          const held = lease;
          lease = await retry(
            `renewing ${key}`,
            () => store.leases.renew(held, { ttlMs }),
            async () => {
              // A renew applied before its answer was lost: our nonce at a newer revision.
              const current = await store.locks.getByKey(held.key);
              return current !== null &&
                current.value.nonce === held.record.nonce &&
                current.revision > held.revision
                ? { value: { key: held.key, record: current.value, revision: current.revision } }
                : null;
            },
          );
        },
        async release() {
          await store.leases.release(lease);
        },
      };
    },
    async getLease(key) {
      return retry('reading a lease', () => store.leases.holder(key));
    },
    async listLeases() {
      // The acquire fence (lease.ts) is no one's lease.
      return (await store.locks.list()).filter((v) => v.key !== FENCE_KEY).map((v) => v.value);
    },
    async breakLease(record: LeaseRecord) {
      const cur = await store.locks.getByKey(record.key);
      if (cur !== null && cur.value.nonce === record.nonce) await store.locks.delete(cur.key, cur.revision);
    },
    async appendRoutingEvents(events: readonly RoutingEvent[]) {
      // Each event carries the whole record it sets: a batch applied twice changes nothing.
      await retry('appending routing events', () => store.routing.appendAll(events));
    },
  };
}
