import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NATS_CLUSTER_PORT, NATS_STORE_CLIENT_PORT, NATS_STORE_LEAF_PORT } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import { GUARDED_TCP_PORTS } from '../dataplane/component-spec.ts';
import {
  routePassword,
  STORE_CONFIG_FILE,
  storeClusterName,
  storeLeafUrls,
  storeMemberSettings,
  storeMemberSpec,
} from './member.ts';

const members = [
  { machineId: 'm1', overlayIp: 'fd70:6c6f:797a:1::1' },
  { machineId: 'm2', overlayIp: 'fd70:6c6f:797a:2::1' },
  { machineId: 'm3', overlayIp: 'fd70:6c6f:797a:3::1' },
];
const base = { installation: 'local', authority: 'auth-default', members, leafSecret: 'leaf-secret-123' };

describe('store cluster member settings', () => {
  it('routes to the two other members over their overlay addresses, authenticated', () => {
    const text = storeMemberSettings({ ...base, machineId: 'm2' });
    const pw = routePassword('leaf-secret-123');
    expect(text).toContain('server_name: "m2-store"');
    expect(text).toContain(`nats-route://ployz-route:${pw}@[fd70:6c6f:797a:1::1]:${NATS_CLUSTER_PORT}`);
    expect(text).toContain(`nats-route://ployz-route:${pw}@[fd70:6c6f:797a:3::1]:${NATS_CLUSTER_PORT}`);
    expect(text).not.toContain('[fd70:6c6f:797a:2::1]:6222');
    expect(text).toContain(`listen: "[::]:${NATS_STORE_CLIENT_PORT}"`);
    expect(text).toContain(`leafnodes { listen: "[::]:${NATS_STORE_LEAF_PORT}"`);
    expect(text).toContain(`name: "${storeClusterName('local', 'auth-default')}"`);
    expect(text).toContain('include "auth.conf"');
    expect(text).toContain('jetstream { store_dir: "/data" }');
    // A cut member's routes and leaf connections are closed in seconds (a leaf moves to another).
    expect(text).toContain('ping_interval: "2s"');
    expect(text).toContain('ping_max: 2');
  });

  it('the route password is derived from the leaf secret and differs from it', () => {
    expect(routePassword('a')).toBe(routePassword('a'));
    expect(routePassword('a')).not.toBe(routePassword('b'));
    expect(routePassword('a')).not.toContain('a'.repeat(2));
    expect(routePassword('leaf-secret-123')).not.toBe('leaf-secret-123');
  });

  it('refuses anything but three distinct members including itself', () => {
    expect(() => storeMemberSettings({ ...base, machineId: 'm4' })).toThrow(
      /INVALID_ARGUMENT|three distinct/,
    );
    expect(() => storeMemberSettings({ ...base, machineId: 'm1', members: members.slice(0, 2) })).toThrow(
      /three distinct/,
    );
    const dup = [members[0], members[1], { machineId: 'm3', overlayIp: members[0]?.overlayIp ?? '' }];
    expect(() => storeMemberSettings({ ...base, machineId: 'm1', members: dup as typeof members })).toThrow(
      /three distinct/,
    );
  });

  it('is a configuration nats-server 2.9 accepts (nats-server -t)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ployz-store-member-'));
    try {
      writeFileSync(join(dir, 'nats.conf'), storeMemberSettings({ ...base, machineId: 'm1' }));
      writeFileSync(join(dir, 'auth.conf'), 'authorization { users: [ { user: "x", password: "y" } ] }\n');
      const run = spawnSync('nats-server', ['-c', join(dir, 'nats.conf'), '-t'], { encoding: 'utf8' });
      expect(`${run.stdout}${run.stderr}`).toMatch(/configuration file .* is valid/);
      expect(run.status).toBe(0);
      // And a broken one is not (the check can fail).
      writeFileSync(
        join(dir, 'nats.conf'),
        storeMemberSettings({ ...base, machineId: 'm1' }).replace('auth.conf', 'missing.conf'),
      );
      expect(
        spawnSync('nats-server', ['-c', join(dir, 'nats.conf'), '-t'], { encoding: 'utf8' }).status,
      ).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every port of the member is closed to workloads', () => {
    for (const port of [NATS_STORE_CLIENT_PORT, NATS_STORE_LEAF_PORT, NATS_CLUSTER_PORT]) {
      expect(GUARDED_TCP_PORTS).toContain(port);
    }
  });

  it('leaf urls name all three members on the store leaf port', () => {
    expect(storeLeafUrls(members, 's')).toEqual([
      `nats-leaf://ployz-leaf:s@[fd70:6c6f:797a:1::1]:${NATS_STORE_LEAF_PORT}`,
      `nats-leaf://ployz-leaf:s@[fd70:6c6f:797a:2::1]:${NATS_STORE_LEAF_PORT}`,
      `nats-leaf://ployz-leaf:s@[fd70:6c6f:797a:3::1]:${NATS_STORE_LEAF_PORT}`,
    ]);
  });

  it('the container: its own data and config directories, the settings hash drifts with the file', () => {
    const specInput = {
      ...base,
      machineId: 'm1',
      containerPrefix: 'ployz-',
      image: 'ployz/nats:latest',
      imageId: 'sha256:b',
      dataDir: '/var/lib/ployz/nats-store',
      confDir: '/var/lib/ployz/nats-conf',
      labels: { 'ployz.component': 'nats-store' },
    };
    const spec = storeMemberSpec(specInput);
    expect(spec.name).toBe('ployz-nats-store');
    expect(spec.cmd).toEqual(['--config', STORE_CONFIG_FILE]);
    expect(spec.binds).toEqual([
      '/var/lib/ployz/nats-store:/data',
      '/var/lib/ployz/nats-conf:/etc/ployz/nats-store:ro',
    ]);
    expect(spec.binds.join(' ')).not.toContain('/var/lib/ployz/nats:');
    const other = storeMemberSpec({ ...specInput, leafSecret: 'another' });
    expect(other.env.PLOYZ_NATS_SETTINGS_HASH).not.toBe(spec.env.PLOYZ_NATS_SETTINGS_HASH);
  });
});
