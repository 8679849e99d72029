import { ADMIN_PATHS, DnsEnv, type EnvContract, type EnvSettings, GatewayEnv } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import {
  type ContainerSpec,
  type DataPlaneInput,
  desiredComponents,
  desiredSpecs,
  natsServerSettings,
} from './component-spec.ts';

const images = {
  networking: 'ployz/networking:latest',
  nats: 'ployz/nats:latest',
  gateway: 'ployz/gateway:latest',
  dns: 'ployz/dns:latest',
};
const input: DataPlaneInput = {
  installation: 'local',
  authority: 'auth-default',
  machineId: 'm1',
  overlayIp: 'fd70:6c6f:797a:1:2:3:4:5',
  overlayPrefix: 'fd70:6c6f:797a::/48',
  subnet: '10.210.7.0/24',
  containerPrefix: 'ployz-',
  bridgeName: 'ployz',
  gatewayHostPort: 80,
  gatewayHttpsHostPort: 443,
  gatewayHostIp: '0.0.0.0',
  wireguardPort: 51820,
  wireguardKeyDir: '/var/lib/ployz/wg',
  natsDataDir: '/var/lib/ployz/nats',
  acmeDir: '/var/lib/ployz/acme',
  natsAuth: {
    confDir: '/var/lib/ployz/nats-conf',
    gatewaySeedDir: '/var/lib/ployz/nats-auth/mount/gateway',
    dnsSeedDir: '/var/lib/ployz/nats-auth/mount/dns',
  },
  natsMesh: null,
  images,
  imageIds: { networking: 'sha256:a', nats: 'sha256:b', gateway: 'sha256:c', dns: 'sha256:d' },
  extraEnv: {},
};

const hashes = (i: DataPlaneInput) =>
  Object.fromEntries(desiredComponents(i).map((d) => [d.spec.component, d.configHash]));

describe('desired component specs', () => {
  it('ployz-nats: the storage machine holds JetStream and a leafnode port; a member is a leaf of the hubs', () => {
    const secret = 'S'.repeat(43);
    const hub = natsServerSettings({ ...input, natsMesh: { leafSecret: secret, hubs: null } });
    expect(hub).toContain('jetstream { store_dir: "/data" }');
    expect(hub).toContain('default_js_domain: { "$G": "" }');
    expect(hub).toContain(
      `leafnodes { listen: "[::]:7422", authorization { user: "ployz-leaf", password: "${secret}"`,
    );
    expect(hub).not.toContain('remotes');
    const leaf = natsServerSettings({
      ...input,
      natsMesh: { leafSecret: secret, hubs: ['fd70:6c6f:797a:1::1', 'fd70:6c6f:797a:2::1'] },
    });
    expect(leaf).not.toContain('jetstream {');
    expect(leaf).toContain('default_js_domain: { "$G": "" }');
    expect(leaf).toContain(
      `remotes: [ { urls: ["nats-leaf://ployz-leaf:${secret}@[fd70:6c6f:797a:1::1]:7422","nats-leaf://ployz-leaf:${secret}@[fd70:6c6f:797a:2::1]:7422"] } ]`,
    );
    expect(leaf).not.toContain('listen: "[::]:7422"');
    // Switched over after a promotion: a leaf of the three store members on their leaf port.
    const switched = natsServerSettings({
      ...input,
      natsMesh: { leafSecret: secret, hubs: ['fd70:6c6f:797a:1::1', 'fd70:6c6f:797a:2::1'], hubPort: 7423 },
    });
    expect(switched).not.toContain('jetstream {');
    expect(switched).toContain(`"nats-leaf://ployz-leaf:${secret}@[fd70:6c6f:797a:2::1]:7423"`);
    expect(switched).not.toContain(':7422');
    expect(switched).not.toContain('dont_randomize');
    // A member's own machine tries the hubs in order (its own member first).
    const ordered = natsServerSettings({
      ...input,
      natsMesh: { leafSecret: secret, hubs: ['fd70:6c6f:797a:2::1'], hubPort: 7423, ordered: true },
    });
    expect(ordered).toContain(':7423"], dont_randomize: true } ]');
    // In a fleet a silent link (a cut machine) is closed in seconds, on the hub and on the leaf.
    for (const text of [hub, leaf, switched]) {
      expect(text).toContain('ping_interval: "2s"');
      expect(text).toContain('ping_max: 2');
    }
    // A changed role or secret is a changed file: the settings hash (ployz-nats's drift) moves.
    const hashOf = (mesh: DataPlaneInput['natsMesh']) =>
      desiredComponents({ ...input, natsMesh: mesh }).find((d) => d.spec.component === 'nats')?.spec.env
        .PLOYZ_NATS_SETTINGS_HASH;
    const hubHash = hashOf({ leafSecret: secret, hubs: null });
    expect(hashOf({ leafSecret: secret, hubs: ['fd70:6c6f:797a:1::1'] })).not.toBe(hubHash);
    expect(hashOf({ leafSecret: 'T'.repeat(43), hubs: null })).not.toBe(hubHash);
  });

  it('lays out the data plane of DESIGN.md §3', () => {
    const [net, nats, gw, dns] = desiredComponents(input);
    expect(net?.spec).toMatchObject({
      name: 'ployz-networking',
      network: { kind: 'bridge', bridge: 'ployz', ipv4: '10.210.7.2' },
    });
    expect(net?.spec.ports).toContainEqual({
      containerPort: 8080,
      protocol: 'tcp',
      hostIp: '0.0.0.0',
      hostPort: 80,
    });
    // HTTPS (imported and ACME certificates by SNI) on the same host IP.
    expect(net?.spec.ports).toContainEqual({
      containerPort: 8443,
      protocol: 'tcp',
      hostIp: '0.0.0.0',
      hostPort: 443,
    });
    expect(
      desiredSpecs({ ...input, gatewayHttpsHostPort: null })[0]?.ports.map((p) => p.containerPort),
    ).toEqual([8080, 51820]);
    expect(net?.spec.capAdd).toContain('NET_ADMIN');
    expect(net?.spec.devices).toContain('/dev/net/tun');
    for (const child of [nats, gw, dns]) {
      expect(child?.parent).toBe('networking');
      expect(child?.spec.network).toEqual({ kind: 'parent' });
      expect(child?.spec.ports).toEqual([]);
    }
    expect(nats?.spec.binds).toEqual([
      '/var/lib/ployz/nats:/data',
      '/var/lib/ployz/nats-conf:/etc/ployz/nats:ro',
    ]);
    // NATS requires credentials: its config names the keys; each edge app gets its own seed, as a
    // file in its own read-only mount (re-read at reconnect), never as a value in its env.
    // Every server setting in the file (a reload re-reads only the file), which includes the keys.
    expect(nats?.spec.cmd).toEqual(['--config', '/etc/ployz/nats/nats.conf']);
    const settings = natsServerSettings(input);
    expect(settings).toContain('server_name: "m1"');
    expect(settings).toContain('jetstream { store_dir: "/data" }');
    expect(settings).toContain('include "auth.conf"');
    // One machine: no mesh links to watch, nats-server's default pings (no drift on upgrade).
    expect(settings).not.toContain('ping_interval');
    expect(nats?.spec.env.PLOYZ_NATS_SETTINGS_HASH).toMatch(/^[0-9a-f]{16}$/);
    // The gateway reads the ACME feed ployzd writes (certs/, challenges/), read-only.
    expect(gw?.spec.binds).toEqual([
      '/var/lib/ployz/nats-auth/mount/gateway:/run/ployz/nats:ro',
      '/var/lib/ployz/acme:/run/ployz/acme:ro',
    ]);
    expect(dns?.spec.binds).toEqual(['/var/lib/ployz/nats-auth/mount/dns:/run/ployz/nats:ro']);
    for (const edge of [gw, dns]) {
      expect(edge?.spec.env.PLOYZ_NATS_NKEY_SEED_FILE).toBe('/run/ployz/nats/seed');
      expect(edge?.spec.env.PLOYZ_NATS_NKEY_SEED).toBeUndefined();
    }
    expect(net?.spec.env.PLOYZ_NATS_NKEY_SEED_FILE).toBeUndefined();
    expect(net?.spec.binds.join()).not.toContain('nats-auth');
    expect(dns?.spec.env.PLOYZ_DNS_LISTEN).toContain('10.210.7.2:53');
    // System ports closed to the workload subnet, the host's bridge address (.1) let through.
    expect(net?.spec.env).toMatchObject({
      PLOYZ_GUARD_SUBNET: '10.210.7.0/24',
      PLOYZ_GUARD_ALLOW: '10.210.7.1',
      PLOYZ_GUARD_TCP_PORTS: '4222,6222,7422,8222,9180,9181,9053,9054,4223,7423,8223,7480',
    });
    for (const d of desiredComponents(input)) {
      expect(d.spec.labels).toMatchObject({
        'ployz.managed': 'true',
        'ployz.kind': 'system',
        'ployz.installation': 'local',
      });
    }
  });

  it('hashes are stable and change only for the component whose config changed', () => {
    const base = hashes(input);
    expect(hashes(structuredClone(input))).toEqual(base);
    const gw = hashes({ ...input, extraEnv: { gateway: { X: '1' } } });
    expect(gw.gateway).not.toBe(base.gateway);
    expect({ ...gw, gateway: base.gateway }).toEqual(base);
    const img = hashes({ ...input, imageIds: { ...input.imageIds, nats: 'sha256:new' } });
    expect(img.nats).not.toBe(base.nats);
    expect(img.networking).toBe(base.networking);
    const port = hashes({ ...input, gatewayHostPort: 8081 });
    expect(port.networking).not.toBe(base.networking);
    expect(port.gateway).toBe(base.gateway);
    // The HTTPS port is published by the netns owner: only networking's hash moves.
    const https = hashes({ ...input, gatewayHttpsHostPort: 8443 });
    expect(https.networking).not.toBe(base.networking);
    expect({ ...https, networking: base.networking }).toEqual(base);
    const off = hashes({ ...input, gatewayHttpsHostPort: null });
    expect({ ...off, networking: base.networking }).toEqual(base);
    // The feed's directory is the gateway's alone; what the feed writes into it is no drift.
    const acme = hashes({ ...input, acmeDir: '/srv/ployz/acme' });
    expect(acme.gateway).not.toBe(base.gateway);
    expect({ ...acme, gateway: base.gateway }).toEqual(base);
  });

  it('hashes the image id, not its name: the same image under a registry name is no drift', () => {
    const base = hashes(input);
    const renamed = hashes({
      ...input,
      images: {
        networking: '127.0.0.1:5000/ployz/networking:0.1.0',
        nats: '127.0.0.1:5000/ployz/nats:0.1.0',
        gateway: '127.0.0.1:5000/ployz/gateway:0.1.0',
        dns: '127.0.0.1:5000/ployz/dns:0.1.0',
      },
    });
    expect(renamed).toEqual(base);
  });

  it('keeps the parent id out of the hash (it is compared through its own label)', () => {
    const [, nats] = desiredComponents(input);
    expect(nats?.spec.network).toEqual({ kind: 'parent' });
    expect(JSON.stringify(nats?.spec)).not.toMatch(/parent-container-id/);
  });

  it("is the env the edge apps got before the contract moved to @ployz/protocol (plus the gateway's workers and ACME dir)", () => {
    const edge = Object.fromEntries(desiredSpecs(input).map((s) => [s.component, s.env]));
    expect(edge.gateway).toEqual({
      PLOYZ_INSTALLATION: 'local',
      PLOYZ_AUTHORITY: 'auth-default',
      PLOYZ_MACHINE_ID: 'm1',
      PLOYZ_NATS_URL: 'nats://127.0.0.1:4222',
      PLOYZ_NATS_NKEY_SEED_FILE: '/run/ployz/nats/seed',
      PLOYZ_GATEWAY_HTTP_PORT: '8080',
      PLOYZ_GATEWAY_HTTPS_PORT: '8443',
      PLOYZ_GATEWAY_ADMIN_HOST: '10.210.7.2',
      PLOYZ_GATEWAY_ADMIN_PORT: '9180',
      PLOYZ_GATEWAY_WORKERS: '0',
      PLOYZ_GATEWAY_START_WAIT_MS: '10000',
      PLOYZ_GATEWAY_ADMIN_ALT_PORT: '9181',
      PLOYZ_GATEWAY_ACME_DIR: '/run/ployz/acme',
    });
    expect(edge.dns).toEqual({
      PLOYZ_INSTALLATION: 'local',
      PLOYZ_AUTHORITY: 'auth-default',
      PLOYZ_MACHINE_ID: 'm1',
      PLOYZ_NATS_URL: 'nats://127.0.0.1:4222',
      PLOYZ_NATS_NKEY_SEED_FILE: '/run/ployz/nats/seed',
      PLOYZ_DNS_LISTEN: '10.210.7.2:53,127.0.0.1:53,[fd70:6c6f:797a:1:2:3:4:5]:53',
      PLOYZ_DNS_ADMIN: '10.210.7.2:9053',
      PLOYZ_DNS_START_WAIT_MS: '10000',
      PLOYZ_DNS_ADMIN_ALT_PORT: '9054',
    });
    const unauthenticated = desiredSpecs({ ...input, natsAuth: null });
    for (const spec of unauthenticated.filter((s) => s.component === 'gateway' || s.component === 'dns')) {
      expect(spec.env.PLOYZ_NATS_NKEY_SEED_FILE).toBeUndefined();
    }
  });
});

describe('the edge apps parse what ployzd builds (@ployz/protocol components.ts)', () => {
  const specs = Object.fromEntries(desiredSpecs(input).map((s) => [s.component, s])) as Record<
    ContainerSpec['component'],
    ContainerSpec
  >;

  /** Every name ployzd sets is one the app reads; the app's parse of it succeeds. */
  function roundTrip<T extends EnvSettings>(contract: EnvContract<T>, spec: ContainerSpec) {
    for (const name of Object.keys(spec.env)) expect(contract.envNames, name).toContain(name);
    const parsed = contract.parse(spec.env);
    if (!parsed.success) throw new Error(JSON.stringify(parsed.issues));
    return parsed.config;
  }

  /** The URL a Docker healthcheck fetches. */
  function probed(spec: ContainerSpec): string {
    const script = spec.healthcheck?.[2] ?? '';
    return /fetch\("([^"]+)"/.exec(script)?.[1] ?? '';
  }

  it('the gateway: serving and admin ports, admin on the bridge .2, the seed file', () => {
    const config = roundTrip(GatewayEnv, specs.gateway);
    expect(config).toMatchObject({
      httpPort: 8080,
      httpsPort: 8443,
      listenHost: '::',
      adminHost: '10.210.7.2',
      adminPort: 9180,
      natsUrl: 'nats://127.0.0.1:4222',
      natsNkeySeedFile: '/run/ployz/nats/seed',
      installation: 'local',
      authority: 'auth-default',
      machineId: 'm1',
      // 0: one worker per core (apps/ployz-gateway workers.ts).
      workers: 0,
      acmeDir: '/run/ployz/acme',
    });
    expect(config.natsNkeySeed).toBeUndefined();
    // The host publishes its gateway port onto the port the gateway serves HTTP on.
    const [networking] = desiredSpecs(input);
    expect(networking?.ports.map((p) => p.containerPort)).toContain(config.httpPort);
    expect(networking?.ports.map((p) => p.containerPort)).toContain(config.httpsPort);
    // The healthcheck probes the health path where the gateway listens for admin.
    expect(probed(specs.gateway)).toBe(`http://${config.adminHost}:${config.adminPort}${ADMIN_PATHS.health}`);
  });

  it('ployz-dns: listen on the bridge .2, loopback and the overlay; admin on .2; the seed file', () => {
    const config = roundTrip(DnsEnv, specs.dns);
    expect(config).toMatchObject({
      listen: [
        { host: '10.210.7.2', port: 53 },
        { host: '127.0.0.1', port: 53 },
        { host: 'fd70:6c6f:797a:1:2:3:4:5', port: 53 },
      ],
      admin: { host: '10.210.7.2', port: 9053 },
      natsUrl: 'nats://127.0.0.1:4222',
      natsNkeySeedFile: '/run/ployz/nats/seed',
      installation: 'local',
      authority: 'auth-default',
    });
    expect(config.natsNkeySeed).toBeUndefined();
    expect(probed(specs.dns)).toBe(`http://${config.admin.host}:${config.admin.port}${ADMIN_PATHS.health}`);
  });

  it('the guard closes the admin ports the apps parse, and leaves DNS and HTTP open', () => {
    const gateway = roundTrip(GatewayEnv, specs.gateway);
    const dns = roundTrip(DnsEnv, specs.dns);
    const guarded = (specs.networking.env.PLOYZ_GUARD_TCP_PORTS ?? '').split(',').map(Number);
    expect(guarded).toEqual(expect.arrayContaining([gateway.adminPort, dns.admin.port]));
    expect(guarded).not.toContain(gateway.httpPort);
    expect(guarded).not.toContain(gateway.httpsPort);
    for (const l of dns.listen) expect(guarded).not.toContain(l.port);
  });
});
