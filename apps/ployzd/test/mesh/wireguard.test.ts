/**
 * WireguardInterface against a real ployz/networking container (wireguard-go): peers derived from
 * machine records are added, changed and removed live with `wg set`, each peer's subnet is routed
 * through wg0 in the container's netns, a peer nobody asked for is removed, a re-apply changes
 * nothing, and the container is never restarted. Needs the image (bash scripts/images.sh networking).
 */
import { type DockerScope, dockerScope, requireImage } from '@ployz/testkit';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CommandRunner, dockerExecRunner, mustRun } from '../../src/mesh/command.ts';
import { desiredPeers } from '../../src/mesh/peers.ts';
import { MESH_ROUTE_PROTO } from '../../src/mesh/routes.ts';
import { WireguardInterface } from '../../src/mesh/wireguard.ts';
import { machineRecord, wireguardKeys } from './keys.ts';

const self = wireguardKeys();
const peerB = wireguardKeys();
const peerC = wireguardKeys();
const stranger = wireguardKeys();

const records = {
  self: machineRecord('m1', self.publicKey, {
    overlay_ip: 'fd70:6c6f:797a:1:0:0:0:1',
    subnet: '10.210.1.0/24',
    endpoints: ['192.0.2.1:51820'],
  }),
  b: machineRecord('m2', peerB.publicKey, {
    overlay_ip: 'fd70:6c6f:797a:2:0:0:0:1',
    subnet: '10.210.2.0/24',
    endpoints: ['192.0.2.2:51820'],
  }),
  c: machineRecord('m3', peerC.publicKey, {
    overlay_ip: 'fd70:6c6f:797a:3:0:0:0:1',
    subnet: '10.210.3.0/24',
    endpoints: [],
  }),
};

async function waitReady(run: CommandRunner): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await run(['test', '-f', '/run/ployz/networking.ready'])).code === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('ployz-networking never became ready');
}

async function meshRoutes(run: CommandRunner): Promise<string[]> {
  const out = await mustRun(run, ['ip', '-4', 'route', 'show', 'proto', MESH_ROUTE_PROTO], 'test');
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .sort();
}

describe('WireguardInterface on a real ployz-networking (wireguard-go)', () => {
  let scope: DockerScope;
  let container: Docker.Container;
  let run: CommandRunner;
  let wg: WireguardInterface;
  let startedAt: string;

  beforeAll(async () => {
    scope = await dockerScope('mesh-wireguard');
    await requireImage(scope.docker, 'ployz/networking');
    container = await scope.run({
      Image: 'ployz/networking',
      Env: [
        `PLOYZ_WG_PRIVATE_KEY=${self.privateKey}`,
        'PLOYZ_WG_ADDRESSES=fd70:6c6f:797a:1::1/128',
        'PLOYZ_WG_ROUTES=fd70:6c6f:797a::/48',
        'PLOYZ_WG_LISTEN_PORT=51820',
      ],
      HostConfig: {
        CapAdd: ['NET_ADMIN'],
        Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
        Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0' },
      },
    });
    run = dockerExecRunner(scope.docker, container.id);
    await waitReady(run);
    wg = new WireguardInterface(run);
    startedAt = (await container.inspect()).State.StartedAt;
  });
  afterAll(async () => {
    await scope?.cleanup();
  });

  it('adopts wg0 as it is: its key, and no peers yet', async () => {
    const state = await wg.read();
    expect(state.publicKey).toBe(self.publicKey);
    expect(state.listenPort).toBe(51820);
    expect(state.peers).toEqual([]);
  });

  it('adds the peers of the records, routes their subnets through wg0, and a re-apply changes nothing', async () => {
    const desired = desiredPeers(records.self, Object.values(records));
    const first = await wg.apply(desired);
    expect(first.peers.map((c) => c.kind)).toEqual(['add', 'add']);
    expect(first.routes).toEqual({ replaced: ['10.210.2.0/24', '10.210.3.0/24'], removed: [] });

    const peers = (await wg.read()).peers.sort((a, b) =>
      a.publicKey === peerB.publicKey ? -1 : b.publicKey === peerB.publicKey ? 1 : 0,
    );
    expect(peers).toEqual([
      {
        publicKey: peerB.publicKey,
        endpoint: '192.0.2.2:51820',
        allowedIps: expect.arrayContaining(['10.210.2.0/24', 'fd70:6c6f:797a:2::1/128']),
        latestHandshake: 0,
        persistentKeepalive: 25,
      },
      {
        publicKey: peerC.publicKey,
        endpoint: null,
        allowedIps: expect.arrayContaining(['10.210.3.0/24', 'fd70:6c6f:797a:3::1/128']),
        latestHandshake: 0,
        persistentKeepalive: 25,
      },
    ]);
    expect(await meshRoutes(run)).toEqual([
      expect.stringMatching(/^10\.210\.2\.0\/24 dev wg0 /),
      expect.stringMatching(/^10\.210\.3\.0\/24 dev wg0 /),
    ]);

    const again = await wg.apply(desired);
    expect(again.peers).toEqual([]);
    expect(again.routes).toEqual({ replaced: [], removed: [] });
  });

  it('changes an endpoint, removes a machine that left and a peer nobody asked for, without a restart', async () => {
    await mustRun(
      run,
      ['wg', 'set', 'wg0', 'peer', stranger.publicKey, 'allowed-ips', '10.210.9.0/24'],
      'test',
    );
    await mustRun(
      run,
      ['ip', 'route', 'replace', '10.210.9.0/24', 'dev', 'wg0', 'proto', MESH_ROUTE_PROTO],
      'test',
    );
    const moved = { ...records.b, endpoints: ['192.0.2.22:51821'] };
    const result = await wg.apply(desiredPeers(records.self, [records.self, moved]));
    // The update first; the removals in wg's order (by key, and the keys are random here).
    expect(result.peers[0]).toEqual(expect.objectContaining({ kind: 'update', reasons: ['endpoint'] }));
    expect(result.peers.slice(1)).toHaveLength(2);
    expect(result.peers.slice(1)).toEqual(
      expect.arrayContaining([
        { kind: 'remove', publicKey: peerC.publicKey },
        { kind: 'remove', publicKey: stranger.publicKey },
      ]),
    );
    expect(result.routes).toEqual({ replaced: [], removed: ['10.210.3.0/24', '10.210.9.0/24'] });

    const state = await wg.read();
    expect(state.peers.map((p) => [p.publicKey, p.endpoint])).toEqual([
      [peerB.publicKey, '192.0.2.22:51821'],
    ]);
    expect(await meshRoutes(run)).toEqual([expect.stringMatching(/^10\.210\.2\.0\/24 dev wg0 /)]);
    // The overlay route the entry put on wg0 is not the mesh's: it stays.
    expect(await mustRun(run, ['ip', '-6', 'route', 'show', 'dev', 'wg0'], 'test')).toContain(
      'fd70:6c6f:797a::/48',
    );

    const info = await container.inspect();
    expect(info.State.StartedAt).toBe(startedAt);
    expect(info.RestartCount).toBe(0);
  });

  it('removes every peer and mesh route when no other machine is left', async () => {
    const result = await wg.apply(desiredPeers(records.self, [records.self]));
    expect(result.peers).toEqual([{ kind: 'remove', publicKey: peerB.publicKey }]);
    expect((await wg.read()).peers).toEqual([]);
    expect(await meshRoutes(run)).toEqual([]);
  });
});
