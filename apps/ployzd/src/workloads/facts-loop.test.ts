/**
 * Facts checked against reality on real parts: nats-server (instance records, routing stream) and
 * the Docker engine. A workload stopped, restarted or removed by hand makes its instance
 * unroutable at once and routable again only once verified; the other instance is left alone.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { unroutableReason } from '@ployz/routing';
import { Store } from '@ployz/store';
import { type DockerScope, dockerScope, type NatsServer, startNats } from '@ployz/testkit';
import type { InstanceRecord, ReleaseRecord } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machine, service } from '../../test/fakes/sample-records.ts';
import { bridgeIpam } from './addresses.ts';
import { systemClock } from './clock.ts';
import { DockerWorkloads } from './docker-workloads.ts';
import { FactsLoop } from './facts-loop.ts';

const scope = { installation: 'local', authority: 'auth-default' };
const third = 100 + ((randomBytes(1)[0] ?? 0) % 100);
let nats: NatsServer;
let nc: NatsConnection;
let store: Store;
let docker: DockerScope;
let workloads: DockerWorkloads;
let loop: FactsLoop;
let from = 0;

const hello = service('web', { image: 'ployz/hello:latest', env: { PORT: '8080' }, stop_grace_ms: 1000 });

async function deployed(id: string, slot: number): Promise<InstanceRecord> {
  const started = await workloads.start({
    namespace: 'facts',
    service: hello,
    revision: 'rev-0123456789abcdef',
    deploy: 'dep-0facts',
    instance: id,
    slot,
    machine: 'm1',
  });
  const at = new Date().toISOString();
  const record: InstanceRecord = {
    id,
    namespace: 'facts',
    service: 'web',
    slot,
    machine: 'm1',
    revision: 'rev-0123456789abcdef',
    deploy: 'dep-0facts',
    container_id: started.container_id,
    ip: started.ip,
    ip6: null,
    ports: { http: 8080 },
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: at,
    updated_at: at,
  };
  await store.instances.create(record);
  return record;
}

async function record(id: string): Promise<InstanceRecord> {
  const found = (await store.instances.get('facts', 'web', id))?.value;
  if (!found) throw new Error(`no record ${id}`);
  return found;
}

/** Polls until the record's error is `error` (the test timeout is the hang guard). */
async function errorBecomes(id: string, error: string | null): Promise<InstanceRecord> {
  for (;;) {
    const r = await record(id);
    if (r.error === error) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function routable(r: InstanceRecord) {
  const release: ReleaseRecord = {
    namespace: 'facts',
    service: 'web',
    revision: r.revision,
    deploy: r.deploy,
    slots: [{ slot: r.slot, instance: r.id, machine: 'm1' }],
    updated_at: r.updated_at,
  };
  return unroutableReason(r, release, machine('m1'));
}

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  store = await Store.fromConnection(nc, scope);
  docker = await dockerScope('facts-loop');
  const bridge = `ployz-t-${docker.id}`.slice(0, 60);
  await docker.createNetwork({ Name: bridge, IPAM: { Config: [bridgeIpam(`10.246.${third}.0/24`)] } });
  workloads = new DockerWorkloads(
    docker.docker,
    { containerPrefix: `ployz-${docker.id}-`, bridge, dns: null, extraLabels: { ...docker.labels } },
    systemClock,
  );
  loop = new FactsLoop({ docker: docker.docker, store, machine: 'm1', bridge, intervalMs: 600_000 });
  from = (await store.routing.lastSeq()) ?? 0; // follow() yields the events after it
});

afterAll(async () => {
  await loop?.stop();
  await nc?.close();
  await docker?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
});

describe('instance facts against the engine', () => {
  it('a workload stopped, restarted or removed by hand is unroutable until verified; the others are unaffected', async () => {
    const a = await deployed('facts-web-0-aaaa', 0);
    const b = await deployed('facts-web-1-bbbb', 1);
    expect(await loop.check()).toBe(0); // the engine confirms both records
    loop.start();

    await docker.docker.getContainer(a.container_id ?? '').stop({ t: 1 });
    expect(routable(await errorBecomes(a.id, 'unverified: not_running'))).toBe('error');

    await docker.docker.getContainer(a.container_id ?? '').start();
    const back = await errorBecomes(a.id, null);
    expect(routable(back)).toBeNull();
    expect(back.ip).toBe(a.ip);

    await docker.docker.getContainer(a.container_id ?? '').remove({ force: true });
    expect(routable(await errorBecomes(a.id, 'unverified: container_missing'))).toBe('error');

    // A different container under the instance's name is not the one the record names.
    await workloads.start({
      namespace: 'facts',
      service: hello,
      revision: 'rev-0123456789abcdef',
      deploy: 'dep-0facts',
      instance: a.id,
      slot: 0,
      machine: 'm1',
    });
    loop.trigger();
    await errorBecomes(a.id, 'unverified: container_replaced');

    expect(await record(b.id)).toEqual(b);
    // Each verdict was published on the routing stream, and only for the instance it concerns.
    const upserts: InstanceRecord[] = [];
    const follow = new AbortController();
    for await (const { event } of store.routing.follow(from, follow.signal)) {
      if (event.type === 'instance_upserted') upserts.push(event.instance);
      if (upserts.length === 4) follow.abort();
    }
    expect(upserts.map((i) => [i.id, i.error])).toEqual([
      [a.id, 'unverified: not_running'],
      [a.id, null],
      [a.id, 'unverified: container_missing'],
      [a.id, 'unverified: container_replaced'],
    ]);
  });
});
