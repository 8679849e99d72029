/**
 * Route ownership between namespaces: the pure check, and the engine refusing a claimed hostname
 * in its planning step (preview and apply) on the in-memory store, with nothing written.
 */
import {
  isPloyzError,
  type PloyzError,
  type ReleaseRecord,
  type RevisionRecord,
  type RouteSpec,
} from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { MemoryDeployStore } from '../../../test/fakes/memory-store.ts';
import { machine, service, testCodec } from '../../../test/fakes/sample-records.ts';
import { DeployEngine, newDeployId, newInstanceId } from '../engine.ts';
import type { MachineAgent } from '../ports.ts';
import { systemClock } from '../ports.ts';
import { committedClaims, ownershipConflicts, routeClaimsOf, storedRouteConflicts } from './ownership.ts';
import type { DeployManifest, DeployService } from './spec.ts';

const http = (hostnames: string[], path = '/'): RouteSpec => ({
  kind: 'http',
  hostnames,
  path,
  port: 'http',
});
const tcp = (listen: number): RouteSpec => ({ kind: 'tcp', listen, port: 'http' });

function routed(
  namespace: string,
  name: string,
  routes: RouteSpec[],
  image = 'ployz/hello:1',
): DeployService {
  return service(name, { namespace, image, routes });
}

function manifest(namespace: string, services: DeployService[]): DeployManifest {
  return { namespace, services, phases: [], volumes: [], manifest_hash: `h-${namespace}-${services.length}` };
}

function release(namespace: string, svc: string, revision: string): ReleaseRecord {
  return {
    namespace,
    service: svc,
    revision,
    deploy: 'dep-1',
    slots: [],
    updated_at: '2026-01-01T00:00:00.000Z',
  };
}

/** A stored revision of `svc` with these routes, under the id the tests name it by. */
function revision(id: string, namespace: string, svc: string, routes: RouteSpec[]): RevisionRecord {
  const stored = testCodec().toRecord(
    namespace,
    service(svc, { namespace, routes }),
    '2026-01-01T00:00:00.000Z',
  );
  return { ...stored, id };
}

describe('route ownership (pure)', () => {
  it('claims are gateway route ids (host lowercased, no trailing dot, path prefix) and tcp listen ports', () => {
    expect(
      routeClaimsOf('demo', 'web', {
        routes: [http(['Hello.Localhost.'], '/api/'), http(['a.example']), tcp(5432)],
      }),
    ).toEqual([
      { route: 'hello.localhost/api', namespace: 'demo', service: 'web' },
      { route: 'a.example', namespace: 'demo', service: 'web' },
      { route: 'tcp:5432', namespace: 'demo', service: 'web' },
    ]);
  });

  it("another namespace's committed route conflicts; the same host on another path, or the own namespace, does not", () => {
    const committed = committedClaims(
      [release('demo', 'hello', 'rev-a'), release('demo', 'db', 'rev-gone'), release('thief', 'x', 'rev-t')],
      new Map([
        ['rev-a', revision('rev-a', 'demo', 'hello', [http(['hello.localhost']), tcp(5432)])],
        ['rev-t', revision('rev-t', 'thief', 'x', [http(['thief.localhost'])])],
      ]),
    );
    const m = manifest('thief', [
      routed('thief', 'grab', [http(['HELLO.localhost']), http(['hello.localhost'], '/other'), tcp(5432)]),
      routed('thief', 'x', [http(['thief.localhost'])]),
    ]);
    expect(ownershipConflicts(m, committed)).toEqual([
      { route: 'hello.localhost', service: 'grab', owner_namespace: 'demo', owner_service: 'hello' },
      { route: 'tcp:5432', service: 'grab', owner_namespace: 'demo', owner_service: 'hello' },
    ]);
    // demo redeploying its own hostname is fine.
    expect(
      ownershipConflicts(manifest('demo', [routed('demo', 'hello', [http(['hello.localhost'])])]), committed),
    ).toEqual([]);
  });
});

describe('stored route conflicts (what the gateway sees)', () => {
  it('two committed releases on one host + path: the first by namespace/service wins', () => {
    const revisions = new Map([
      ['rev-a', revision('rev-a', 'demo', 'hello', [http(['hello.localhost'])])],
      ['rev-t', revision('rev-t', 'thief', 'grab', [http(['hello.localhost']), http(['own.localhost'])])],
    ]);
    expect(
      storedRouteConflicts([release('thief', 'grab', 'rev-t'), release('demo', 'hello', 'rev-a')], revisions),
    ).toEqual([{ id: 'hello.localhost', winner: 'demo/hello', loser: 'thief/grab' }]);
    expect(storedRouteConflicts([release('demo', 'hello', 'rev-a')], revisions)).toEqual([]);
  });
});

const agent: MachineAgent = {
  async capacity() {
    return { cpus: 2, memory_free_mb: 4096, disk_free_mb: 1000 };
  },
  async start(req) {
    return { container_id: `c-${req.instance}`, ip: '10.210.0.9', name: `ployz-${req.instance}` };
  },
  async waitReady() {},
  async stop() {},
};

function engineOn(store: MemoryDeployStore, machines: MachineAgent = agent): DeployEngine {
  return new DeployEngine({
    store,
    agent: machines,
    codec: testCodec(),
    clock: systemClock,
    containerPrefix: 'ployz-',
    machineId: 'm1',
    processNonce: 'p1',
    drainMs: 0,
    newDeployId: () => newDeployId(),
    newInstanceId,
  });
}

async function refusal(p: Promise<unknown>): Promise<PloyzError> {
  try {
    await p;
  } catch (e) {
    if (isPloyzError(e)) return e;
    throw e;
  }
  throw new Error('expected HOSTNAME_OWNED');
}

describe('route ownership in the engine', () => {
  it('preview and apply refuse a hostname another namespace owns, before any write; releasing it frees it', async () => {
    const store = new MemoryDeployStore(systemClock);
    store.machines.set('m1', machine('m1'));
    const engine = engineOn(store);
    await engine.apply(
      manifest('demo', [routed('demo', 'hello', [http(['hello.localhost'])])]),
      { actor: 't' },
      () => {},
    );
    const before = {
      statuses: store.statuses.size,
      commits: store.commits.length,
      leases: store.leases.size,
      instances: store.instances.size,
    };

    const thief = manifest('thief', [routed('thief', 'grab', [http(['hello.localhost'])])]);
    for (const err of [
      await refusal(engine.preview(thief)),
      await refusal(engine.apply(thief, { actor: 't' }, () => {})),
    ]) {
      expect(err.code).toBe('HOSTNAME_OWNED');
      expect(err.message).toMatch(
        /^hello\.localhost \(service grab\) is owned by namespace demo, service hello/,
      );
      expect(err.details).toEqual({
        namespace: 'thief',
        conflicts: [
          { route: 'hello.localhost', service: 'grab', owner_namespace: 'demo', owner_service: 'hello' },
        ],
      });
    }
    expect({
      statuses: store.statuses.size,
      commits: store.commits.length,
      leases: store.leases.size,
      instances: store.instances.size,
    }).toEqual(before);
    expect([...store.releases.keys()]).toEqual(['demo/hello']);

    // A release stored before the check (or past a race) shows as the gateway's conflict.
    store.revisions.set('rev-t', revision('rev-t', 'thief', 'old', [http(['hello.localhost'])]));
    store.releases.set('thief/old', release('thief', 'old', 'rev-t'));
    expect(await engine.routeConflicts()).toEqual([
      { id: 'hello.localhost', winner: 'demo/hello', loser: 'thief/old' },
    ]);
    store.releases.delete('thief/old');

    // demo moves to another hostname: the old one is free for thief.
    await engine.apply(
      manifest('demo', [routed('demo', 'hello', [http(['hello2.localhost'])], 'ployz/hello:2')]),
      { actor: 't' },
      () => {},
    );
    const result = await engine.apply(thief, { actor: 't' }, () => {});
    expect(result.status?.state).toBe('committed');
    expect(await engine.routeConflicts()).toEqual([]);
  });
});

describe('route ownership between concurrent deploys', () => {
  it('two namespaces deploying one free hostname at once: one commits, the other is HOSTNAME_OWNED with nothing committed', async () => {
    const store = new MemoryDeployStore(systemClock);
    store.machines.set('m1', machine('m1'));
    // Both deploys pass planning (each under its own namespace lease) before either commits.
    let waiting = 0;
    let release!: () => void;
    const bothReady = new Promise<void>((r) => {
      release = r;
    });
    const gated: MachineAgent = {
      ...agent,
      async waitReady() {
        waiting++;
        if (waiting === 2) release();
        await bothReady;
      },
    };
    const engine = engineOn(store, gated);
    const results = await Promise.allSettled(
      ['demo', 'thief'].map((ns) =>
        engine.apply(manifest(ns, [routed(ns, 'web', [http(['free.localhost'])])]), { actor: 't' }, () => {}),
      ),
    );
    const committed = results.filter(
      (r) => r.status === 'fulfilled' && r.value.status?.state === 'committed',
    );
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as PloyzError] : []));
    expect(committed).toHaveLength(1);
    expect(refused.map((e) => [e.code, e.details?.state])).toEqual([['HOSTNAME_OWNED', 'failed']]);
    const loser = refused[0]?.details?.namespace as string;
    expect([...store.statuses.values()].find((st) => st.namespace === loser)?.commits).toEqual([]);
    expect(store.commits).toHaveLength(1);
    expect([...store.releases.keys()]).toHaveLength(1);
    expect(await engine.routeConflicts()).toEqual([]);
    expect(store.leases.size).toBe(0);
  });
});
