import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { connectStore, inboxPrefixOf, openStore, subjectPrefix } from '@ployz/store';
import { freePort, startNats } from '@ployz/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  EDGE_UID,
  edgePermissions,
  ensureNatsCredentials,
  natsSeedMountDir,
  natsServerConfig,
  ployzdSeedSource,
  prepareRotation,
  promoteRotation,
  rotationPending,
} from './nats-credentials.ts';
import { finishInterruptedRotation, rotateNatsCredentials } from './nats-rotation.ts';

const scope = { installation: 'local', authority: 'auth-default' };
const AT = '2026-01-01T00:00:00.000Z';
const machine = (id: string) => ({
  id,
  public_key: 'gg2cSnm6L5l1vRD+WsJXo19lM3q2qVHhKhPDYASQZWQ=',
  overlay_ip: 'fd70::1',
  subnet: '10.210.1.0/24',
  endpoints: [],
  region: 'default',
  region_role: 'compute' as const,
  lifecycle: 'active' as const,
  created_at: '2026-01-01T00:00:00.000Z',
  updated_at: '2026-01-01T00:00:00.000Z',
});
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('NATS identities', () => {
  it('creates one NKey per component once, seeds root-only, the server config with public keys only', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-nats-auth-'));
    dirs.push(dir);
    const first = await ensureNatsCredentials(dir, scope);
    for (const id of ['ployzd', 'gateway', 'dns'] as const) {
      expect(first.seeds[id]).toMatch(/^SU[A-Z2-7]+$/);
      expect(nkeys.fromSeed(new TextEncoder().encode(first.seeds[id])).getPublicKey()).toBe(
        first.publicKeys[id],
      );
      const file = await stat(join(dir, 'nats-auth', `${id}.nk`));
      expect(file.mode & 0o777).toBe(0o600);
    }
    expect((await stat(join(dir, 'nats-auth'))).mode & 0o777).toBe(0o700);
    // Each edge app's seed, alone in its own mount directory, readable only by the image's user.
    for (const id of ['gateway', 'dns'] as const) {
      const seed = await stat(join(natsSeedMountDir(dir, id), 'seed'));
      expect([seed.mode & 0o777, seed.uid]).toEqual([0o400, EDGE_UID]);
      expect((await readFile(join(natsSeedMountDir(dir, id), 'seed'), 'utf8')).trim()).toBe(first.seeds[id]);
    }
    expect(first.pending).toBeNull();
    // A second start reads the same identities.
    expect(await ensureNatsCredentials(dir, scope)).toEqual(first);

    const conf = await readFile(join(dir, 'nats-conf', 'auth.conf'), 'utf8');
    expect(conf).toBe(natsServerConfig(first.publicKeys, scope));
    for (const id of ['ployzd', 'gateway', 'dns'] as const) {
      expect(conf).toContain(first.publicKeys[id]);
      expect(conf).not.toContain(first.seeds[id]);
    }
    expect(conf).not.toMatch(/no_auth_user/);
  });

  it('lets the edge apps read the routing streams only: no KV put, no other stream, no RPC', () => {
    const { publish, subscribe } = edgePermissions(scope, 'gateway');
    // Its own reply inboxes only: not `_INBOX.>` (everyone's replies), not the dns identity's.
    expect(subscribe).toEqual(['_INBOX_gateway.>']);
    expect(edgePermissions(scope, 'dns').subscribe).toEqual(['_INBOX_dns.>']);
    expect(publish).toContain('$JS.API.DIRECT.GET.KV_cp_instances_auth-default.>');
    expect(publish).toContain('$JS.API.CONSUMER.CREATE.routing_events_auth-default.>');
    for (const subject of publish) {
      expect(subject.startsWith('$KV.')).toBe(false);
      expect(subject).not.toMatch(/STREAM\.(CREATE|UPDATE|DELETE|PURGE)|MSG\.DELETE|rpc|^>$/);
      expect(subject).not.toMatch(/cp_(volumes|locks|deploy)/);
    }
  });
});

describe('NATS identities against a real nats-server', () => {
  it('refuses anonymous; the gateway identity follows the routing feed but cannot write or reach RPC', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-nats-auth-'));
    dirs.push(dir);
    const creds = await ensureNatsCredentials(dir, scope);
    await using nats = await startNats({ extraConfig: natsServerConfig(creds.publicKeys, scope) });
    await expect(connectStore({ servers: nats.url, timeoutMs: 3000 })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    // ployzd creates the assets and writes a machine record.
    const owner = await openStore({ servers: nats.url, nkeySeed: creds.seeds.ployzd, ...scope });
    const edge = await openStore({
      servers: nats.url,
      nkeySeed: creds.seeds.gateway,
      inboxPrefix: inboxPrefixOf('gateway'),
      ...scope,
      ensure: false,
    });
    try {
      await owner.machines.create(machine('m1'));
      expect((await edge.routing.snapshot()).machines.map((m) => m.id)).toEqual(['m1']);
      expect((await edge.machines.getByKey('m1'))?.value.id).toBe('m1');
      // The store reports the refused put as JetStream not answering; nothing is written.
      await expect(edge.machines.create(machine('m2'))).rejects.toThrow();
      await expect(
        edge.js.publish(`$KV.${edge.names.instances}.web.api.i1`, '{"hijack":true}'),
      ).rejects.toThrow(/permission/i);
      await expect(
        edge.connection.nc.request(`${subjectPrefix(scope)}.rpc.node.m1.deploy_start`, '{}', {
          timeout: 2000,
        }),
      ).rejects.toThrow(/permission/i);
      expect(await owner.machines.keys()).toEqual(['m1']);
      // Replies to other clients are out of reach: only its own inbox prefix may be subscribed.
      const snoop = edge.connection.nc.subscribe('_INBOX.>');
      expect(String(await snoop.closed)).toMatch(/permission/i);
      // The routing feed (consumers delivering to its own inboxes) still follows new events.
      const abort = new AbortController();
      const seen: string[] = [];
      const following = (async () => {
        for await (const e of edge.routing.follow(0, abort.signal)) {
          seen.push(e.event.type);
          if (seen.length === 2) abort.abort();
        }
      })().catch(() => {});
      for (const id of ['m3', 'm4']) {
        await owner.routing.append({
          type: 'machine_upserted',
          machine: machine(id),
          deploy_id: null,
          at: AT,
        });
      }
      await following;
      expect(seen).toEqual(['machine_upserted', 'machine_upserted']);
    } finally {
      await edge.close();
      await owner.close();
    }
  });
});

const usersIn = (conf: string) => [...conf.matchAll(/nkey: (U[A-Z2-7]+)/g)].map((m) => m[1]);

describe('rotating the NATS identities (files)', () => {
  it('prepare accepts old and new keys, once; promote keeps only the new ones, in every file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-nats-auth-'));
    dirs.push(dir);
    const before = await ensureNatsCredentials(dir, scope);
    const { credentials: prepared, nextSeeds } = await prepareRotation(dir, scope);
    expect(prepared.seeds).toEqual(before.seeds); // components keep their seeds until promote
    expect(prepared.pending).not.toBeNull();
    const conf = () => readFile(join(dir, 'nats-conf', 'auth.conf'), 'utf8');
    expect(usersIn(await conf()).sort()).toEqual(
      [...Object.values(before.publicKeys), ...Object.values(prepared.pending ?? {})].sort(),
    );
    expect(await rotationPending(dir)).toBe(true);
    // Asked again (a retried command), the same next keys: a rotation is never doubled.
    expect((await prepareRotation(dir, scope)).nextSeeds).toEqual(nextSeeds);
    // A restart in between still accepts both (ensure keeps the pending keys).
    expect((await ensureNatsCredentials(dir, scope)).pending).toEqual(prepared.pending);

    const after = await promoteRotation(dir, scope);
    expect(after.seeds).toEqual(nextSeeds);
    expect(after.pending).toBeNull();
    expect(usersIn(await conf()).sort()).toEqual(Object.values(after.publicKeys).sort());
    for (const id of ['ployzd', 'gateway', 'dns'] as const) {
      expect(after.publicKeys[id]).not.toBe(before.publicKeys[id]);
      expect(await conf()).not.toContain(before.publicKeys[id]);
    }
    expect(ployzdSeedSource(dir)()).toBe(nextSeeds.ployzd);
    expect((await readFile(join(natsSeedMountDir(dir, 'gateway'), 'seed'), 'utf8')).trim()).toBe(
      nextSeeds.gateway,
    );
    expect(await rotationPending(dir)).toBe(false);
    // Promote without a prepared rotation changes nothing.
    expect(await promoteRotation(dir, scope)).toEqual(after);
  });

  it('a promotion cut short (some next keys already current) names each key once', () => {
    const k = { ployzd: 'UA', gateway: 'UB', dns: 'UC' };
    const conf = natsServerConfig(k, scope, { ployzd: 'UA', gateway: 'UX', dns: 'UY' });
    expect(usersIn(conf)).toEqual(['UA', 'UB', 'UX', 'UC', 'UY']);
  });
});

describe('rotating the NATS identities against a real nats-server', () => {
  /** nats-server whose config includes the machine's (the way ployz-nats reads it), with monitoring. */
  async function natsFor(dir: string) {
    const http = await freePort();
    const nats = await startNats({
      extraConfig: `http: "127.0.0.1:${http}"`,
      include: join(dir, 'nats-conf', 'auth.conf'),
    });
    return { nats, monitorUrl: `http://127.0.0.1:${http}` };
  }

  it('no client is left without a valid key: live clients move to the new keys by themselves; old keys refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-nats-auth-'));
    dirs.push(dir);
    const before = await ensureNatsCredentials(dir, scope);
    const { nats, monitorUrl } = await natsFor(dir);
    await using _nats = nats;
    const reload = async () => {
      process.kill(nats.pid ?? 0, 'SIGHUP');
    };
    // ployzd and the two edge apps, each re-reading its seed file at every (re)connect.
    const owner = await openStore({
      servers: nats.url,
      nkeySeed: ployzdSeedSource(dir),
      name: 'ployzd',
      ...scope,
    });
    const edgeSeed = (id: 'gateway' | 'dns') => () =>
      readFileSync(join(natsSeedMountDir(dir, id), 'seed'), 'utf8').trim();
    const gateway = await openStore({
      servers: nats.url,
      nkeySeed: edgeSeed('gateway'),
      inboxPrefix: inboxPrefixOf('gateway'),
      name: 'ployz-gateway',
      ...scope,
      ensure: false,
    });
    const dns = await openStore({
      servers: nats.url,
      nkeySeed: edgeSeed('dns'),
      inboxPrefix: inboxPrefixOf('dns'),
      name: 'ployz-dns',
      ...scope,
      ensure: false,
    });
    try {
      await owner.machines.create(machine('m1'));
      const result = await rotateNatsCredentials({
        stateDir: dir,
        scope,
        natsUrl: nats.url,
        monitorUrl,
        reload,
      });
      expect(result.previous_public_keys).toEqual(before.publicKeys);
      for (const id of ['ployzd', 'gateway', 'dns'] as const) {
        expect(result.public_keys[id]).not.toBe(before.publicKeys[id]);
      }
      expect(result.reconnected).toEqual({ ployzd: true, gateway: true, dns: true });
      // The old seeds are refused now; the same clients, never closed, keep working on the new.
      for (const id of ['ployzd', 'gateway', 'dns'] as const) {
        await expect(
          connectStore({ servers: nats.url, nkeySeed: before.seeds[id], timeoutMs: 3000 }),
        ).rejects.toMatchObject({
          code: 'STORE_UNAVAILABLE',
        });
      }
      await owner.machines.create(machine('m2'));
      expect((await gateway.routing.snapshot()).machines.map((m) => m.id).sort()).toEqual(['m1', 'm2']);
      expect((await dns.routing.snapshot()).machines.map((m) => m.id).sort()).toEqual(['m1', 'm2']);
      expect(gateway.connection.state).toBe('connected');
      // The edge identities are still read-only after the rotation.
      await expect(gateway.js.publish(`$KV.${gateway.names.instances}.web.api.i1`, '{}')).rejects.toThrow(
        /permission/i,
      );
    } finally {
      await Promise.all([gateway.close(), dns.close(), owner.close()]);
    }
  });

  it('a rotation cut short between prepare and promote is finished at the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-nats-auth-'));
    dirs.push(dir);
    const before = await ensureNatsCredentials(dir, scope);
    const { nats } = await natsFor(dir);
    await using _nats = nats;
    const reload = async () => {
      process.kill(nats.pid ?? 0, 'SIGHUP');
    };
    const { nextSeeds } = await prepareRotation(dir, scope);
    await reload();
    // ployzd stops here. At its next start:
    expect(await finishInterruptedRotation({ stateDir: dir, scope, reload })).toBe(true);
    expect(await rotationPending(dir)).toBe(false);
    const ok = await openStore({ servers: nats.url, nkeySeed: nextSeeds.ployzd, ...scope });
    await ok.close();
    await expect(
      connectStore({ servers: nats.url, nkeySeed: before.seeds.ployzd, timeoutMs: 3000 }),
    ).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    // Nothing pending: a start only reloads.
    expect(await finishInterruptedRotation({ stateDir: dir, scope, reload })).toBe(false);
  });
});
