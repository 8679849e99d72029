import { describe, expect, it } from 'vitest';
import { type DataPlaneInput, desiredComponents } from './component-spec.ts';

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
  gatewayHostIp: '0.0.0.0',
  wireguardPort: 51820,
  wireguardKeyDir: '/var/lib/ployz/wg',
  natsDataDir: '/var/lib/ployz/nats',
  images,
  imageIds: { networking: 'sha256:a', nats: 'sha256:b', gateway: 'sha256:c', dns: 'sha256:d' },
  extraEnv: {},
};

const hashes = (i: DataPlaneInput) =>
  Object.fromEntries(desiredComponents(i).map((d) => [d.spec.component, d.configHash]));

describe('desired component specs', () => {
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
    expect(net?.spec.capAdd).toContain('NET_ADMIN');
    expect(net?.spec.devices).toContain('/dev/net/tun');
    for (const child of [nats, gw, dns]) {
      expect(child?.parent).toBe('networking');
      expect(child?.spec.network).toEqual({ kind: 'parent' });
      expect(child?.spec.ports).toEqual([]);
    }
    expect(nats?.spec.binds).toEqual(['/var/lib/ployz/nats:/data']);
    expect(dns?.spec.env.PLOYZ_DNS_LISTEN).toContain('10.210.7.2:53');
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
  });

  it('keeps the parent id out of the hash (it is compared through its own label)', () => {
    const [, nats] = desiredComponents(input);
    expect(nats?.spec.network).toEqual({ kind: 'parent' });
    expect(JSON.stringify(nats?.spec)).not.toMatch(/parent-container-id/);
  });
});
