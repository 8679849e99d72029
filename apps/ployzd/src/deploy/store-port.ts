/**
 * The DeployStore port on the real @ployz/store (NATS JetStream). Every KV write is
 * compare-and-set (`modify` re-reads on a lost race; the deploy lease makes this daemon the only
 * writer of a namespace's deploy records, so a retry never overwrites someone else's intent).
 */
import { escapeToken, type Lease, type Store } from '@ployz/store';
import type { DeployCommit, LeaseRecord, RoutingEvent } from '@ployz/types';
import type { DeployStore, HeldLease } from './ports.ts';

export function storeDeployPort(store: Store): DeployStore {
  return {
    async listMachines() {
      return (await store.machines.list()).map((v) => v.value);
    },
    async getStatus(id) {
      return (await store.deployStatus.get(id))?.value ?? null;
    },
    async putStatus(record) {
      await store.deployStatus.modify([record.deploy_id], () => record);
    },
    async listStatuses(namespace) {
      const all = (await store.deployStatus.list()).map((v) => v.value);
      return namespace === undefined ? all : all.filter((s) => s.namespace === namespace);
    },
    async putPhase(record) {
      await store.deployPhases.modify([record.deploy_id, record.phase], () => record);
    },
    async listPhases(deployId) {
      const prefix = `${escapeToken(deployId)}.>`;
      return (await store.deployPhases.list(prefix)).map((v) => v.value);
    },
    async appendCommit(commit: DeployCommit) {
      await store.commits.append(commit);
    },
    async listCommits(namespace) {
      return (await store.commits.list(namespace)).map((c) => c.commit);
    },
    async putRevision(record) {
      await store.revisions.modify([record.namespace, record.service, record.id], (cur) =>
        cur === null ? record : undefined,
      );
    },
    async getRevision(namespace, service, id) {
      return (await store.revisions.get(namespace, service, id))?.value ?? null;
    },
    async listReleases(namespace) {
      return (await store.releases.list(`${escapeToken(namespace)}.>`)).map((v) => v.value);
    },
    async putRelease(record) {
      await store.releases.modify([record.namespace, record.service], () => record);
    },
    async deleteRelease(namespace, service) {
      const cur = await store.releases.get(namespace, service);
      if (cur !== null) await store.releases.delete(cur.key, cur.revision);
    },
    async listInstances(namespace) {
      const filter = namespace === undefined ? '>' : `${escapeToken(namespace)}.>`;
      return (await store.instances.list(filter)).map((v) => v.value);
    },
    async putInstance(record) {
      await store.instances.modify([record.namespace, record.service, record.id], () => record);
    },
    async deleteInstance(record) {
      const cur = await store.instances.get(record.namespace, record.service, record.id);
      if (cur !== null) await store.instances.delete(cur.key, cur.revision);
    },
    async acquireLease(key, owner, ttlMs, purpose): Promise<HeldLease> {
      let lease: Lease = await store.leases.acquire(key, { owner, ttlMs, purpose });
      return {
        get record() {
          return lease.record;
        },
        async renew() {
          lease = await store.leases.renew(lease, { ttlMs });
        },
        async release() {
          await store.leases.release(lease);
        },
      };
    },
    async getLease(key) {
      return store.leases.holder(key);
    },
    async listLeases() {
      return (await store.locks.list()).map((v) => v.value);
    },
    async breakLease(record: LeaseRecord) {
      const cur = await store.locks.getByKey(record.key);
      if (cur !== null && cur.value.nonce === record.nonce) await store.locks.delete(cur.key, cur.revision);
    },
    async appendRoutingEvent(event: RoutingEvent) {
      await store.routing.append(event);
    },
  };
}
