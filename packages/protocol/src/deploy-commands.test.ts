import { parseManifest } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { DeployStartBody, DeployStopBody } from './deploy-commands.ts';

const [service] = parseManifest(
  `namespace = "shop"
[[volumes]]
name = "data"
[[services]]
name = "web"
image = "ployz/hello:latest"
[[services.mounts]]
volume = "data"
target = "/data"
`,
  { filename: 'deploy.toml' },
).services;

const body = {
  namespace: 'shop',
  service,
  volumes: [],
  revision: 'rev-0123456789abcdef',
  deploy: 'dep-0000000000test0000',
  instance: 'shop-web-0-aaaa0000',
  slot: 0,
  machine: 'm1',
};

const pathOf = (r: { success: boolean; error?: { issues: { path: PropertyKey[] }[] } }) =>
  r.error?.issues[0]?.path.join('.');

describe('deploy command bodies', () => {
  it('a start takes the service exactly as the manifest parsed it', () => {
    expect(DeployStartBody.parse(body).service).toEqual(service);
  });

  it('refuses names the manifest refuses, host paths and keys it does not know', () => {
    const mount = { kind: 'volume', volume: '../etc', target: '/data', read_only: false };
    expect(pathOf(DeployStartBody.safeParse({ ...body, service: { ...service, mounts: [mount] } }))).toBe(
      'service.mounts.0.volume',
    );
    const bind = { kind: 'bind', source: '/etc', target: '/data', read_only: false, per_slot: false };
    expect(pathOf(DeployStartBody.safeParse({ ...body, service: { ...service, mounts: [bind] } }))).toBe(
      'service.mounts.0.kind',
    );
    expect(pathOf(DeployStartBody.safeParse({ ...body, service: { ...service, name: 'a.b' } }))).toBe(
      'service.name',
    );
    expect(DeployStartBody.safeParse({ ...body, volumes_root: '/' }).success).toBe(false);
    const volume = {
      name: '..',
      quota_bytes: null,
      scope: 'per_slot',
      owner: null,
      mode: null,
      keep_snapshots: 10,
    };
    expect(pathOf(DeployStartBody.safeParse({ ...body, volumes: [volume] }))).toBe('volumes.0.name');
    expect(pathOf(DeployStartBody.safeParse({ ...body, machine: 'M1/x' }))).toBe('machine');
  });

  it('a stop names a namespace and service as DNS labels', () => {
    const stop = { namespace: 'shop', service: 'web', instance: 'i1', machine: 'm1', stop_grace_ms: 0 };
    expect(DeployStopBody.parse(stop)).toEqual(stop);
    expect(pathOf(DeployStopBody.safeParse({ ...stop, namespace: '../x' }))).toBe('namespace');
  });
});
