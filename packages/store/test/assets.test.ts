import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetNames, ensureAssets, Store, validateReplicas } from '../src/index.ts';

let nats: Awaited<ReturnType<typeof startNats>>;

beforeAll(async () => {
  nats = await startNats();
});
afterAll(async () => {
  await nats?.stop();
});

describe('assets', () => {
  it('creates exactly the DESIGN.md §4 names, idempotently', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const scope = { installation: 'inst1', authority: 'auth-a' };
      const first = await ensureAssets(nc, scope, 1);
      expect(first.created.sort()).toEqual(
        [
          'machines_inst1',
          'invites_inst1',
          'subnets_inst1',
          'cp_deploy_commits_auth-a',
          'cp_deploy_status_auth-a',
          'cp_deploy_phases_auth-a',
          'cp_revisions_auth-a',
          'cp_releases_auth-a',
          'cp_instances_auth-a',
          'cp_volumes_auth-a',
          'cp_locks_auth-a',
          'routing_events_auth-a',
          // ployzd's own records (ACME, registry credentials): store assets since issue 19, so
          // they follow the replica count and a promotion carries them.
          'acme_certs_inst1',
          'acme_challenges_inst1',
          'acme_renewals_inst1',
          'acme_accounts_inst1',
          'registry_auth_inst1',
        ].sort(),
      );
      const second = await ensureAssets(nc, scope, 1);
      expect(second.created).toEqual([]);
      expect(second.existing).toHaveLength(17);

      const jsm = await jetstreamManager(nc);
      const streams: string[] = [];
      for await (const s of jsm.streams.list()) streams.push(s.config.name);
      expect(streams).toContain('KV_machines_inst1');
      expect(streams).toContain('cp_deploy_commits_auth-a');
      const commits = await jsm.streams.info('cp_deploy_commits_auth-a');
      expect(commits.config.storage).toBe('file');
      expect(commits.config.deny_delete).toBe(true);
      expect(commits.config.deny_purge).toBe(true);
      expect(commits.config.num_replicas).toBe(1);
    } finally {
      await nc.close();
    }
  });

  it('replicas must be 1, 3 or 5', () => {
    expect(validateReplicas(1)).toBe(1);
    expect(validateReplicas(3)).toBe(3);
    expect(validateReplicas(5)).toBe(5);
    for (const n of [0, 2, 4, 7]) {
      const err = (() => {
        try {
          validateReplicas(n);
        } catch (e) {
          return e;
        }
      })();
      expect(isPloyzError(err, 'REPLICAS_INVALID')).toBe(true);
      expect(String((err as Error).message)).toMatch(/use 1, 3 or 5/);
    }
  });

  it('opening a store with 2 replicas fails before touching the server', async () => {
    const nc = await connect({ servers: nats.url });
    try {
      const err = await Store.fromConnection(nc, { installation: 'x', authority: 'y', replicas: 2 }).catch(
        (e: unknown) => e,
      );
      expect(isPloyzError(err, 'REPLICAS_INVALID')).toBe(true);
      const jsm = await jetstreamManager(nc);
      const names: string[] = [];
      for await (const s of jsm.streams.names()) names.push(s);
      expect(names.some((n) => n.endsWith('_y') || n.endsWith('_x'))).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it('refuses installation/authority names that cannot be asset names', () => {
    expect(() => assetNames({ installation: 'a.b', authority: 'c' })).toThrow(/letters, digits/);
  });
});
