import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ContainerSpec, configHash, labelWithConfigHash } from './container-spec.ts';
import { LABELS } from './labels.ts';

const base: ContainerSpec = {
  name: 'ployz-gateway',
  image: 'sha256:1111',
  command: ['node', 'main.js'],
  entrypoint: null,
  env: { A: '1', B: '2' },
  labels: { [LABELS.managed]: 'true', [LABELS.kind]: 'system' },
  mounts: [
    { type: 'volume', source: 'data', target: '/data' },
    { type: 'tmpfs', target: '/tmp', size_bytes: 1024 },
  ],
  network_mode: 'container:ployz-networking',
  parent_container_id: 'abc123',
  ports: [
    { container_port: 80, protocol: 'tcp' },
    { container_port: 53, protocol: 'udp' },
  ],
  cap_add: ['NET_ADMIN', 'NET_RAW'],
};

/** One change to each field that defines a container. */
const mutations: [string, (s: ContainerSpec) => ContainerSpec][] = [
  ['name', (s) => ({ ...s, name: `${s.name}x` })],
  ['image', (s) => ({ ...s, image: 'sha256:2222' })],
  ['command', (s) => ({ ...s, command: ['node', 'other.js'] })],
  ['command null', (s) => ({ ...s, command: null })],
  ['entrypoint', (s) => ({ ...s, entrypoint: ['/bin/sh'] })],
  ['env value', (s) => ({ ...s, env: { ...s.env, A: '3' } })],
  ['env added', (s) => ({ ...s, env: { ...s.env, C: '' } })],
  ['label value', (s) => ({ ...s, labels: { ...s.labels, [LABELS.kind]: 'workload' } })],
  ['label added', (s) => ({ ...s, labels: { ...s.labels, 'ployz.extra': 'x' } })],
  ['mount target', (s) => ({ ...s, mounts: [{ type: 'volume', source: 'data', target: '/data2' }] })],
  [
    'mount read-only',
    (s) => ({ ...s, mounts: [{ type: 'volume', source: 'data', target: '/data', read_only: true }] }),
  ],
  ['network mode', (s) => ({ ...s, network_mode: 'bridge' })],
  ['parent container', (s) => ({ ...s, parent_container_id: 'def456' })],
  ['port', (s) => ({ ...s, ports: [{ container_port: 81 }] })],
  [
    'port protocol',
    (s) => ({
      ...s,
      ports: [
        { container_port: 80, protocol: 'udp' },
        { container_port: 53, protocol: 'udp' },
      ],
    }),
  ],
  [
    'published port',
    (s) => ({
      ...s,
      ports: [
        { container_port: 80, host_port: 8080 },
        { container_port: 53, protocol: 'udp' },
      ],
    }),
  ],
  ['ip', (s) => ({ ...s, ip: '10.210.0.5' })],
  ['cap_add', (s) => ({ ...s, cap_add: ['NET_ADMIN'] })],
  ['devices', (s) => ({ ...s, devices: ['/dev/net/tun'] })],
  ['user', (s) => ({ ...s, user: '1000' })],
  ['restart policy', (s) => ({ ...s, restart_policy: 'always' })],
  ['memory', (s) => ({ ...s, memory_bytes: 1 << 20 })],
  ['extra', (s) => ({ ...s, extra: { config: 'v2' } })],
];

describe('configHash', () => {
  it('is 64 hex characters and ignores the config-hash label itself', () => {
    const h = configHash(base);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(configHash({ ...base, labels: { ...base.labels, [LABELS.configHash]: 'anything' } })).toBe(h);
    expect(labelWithConfigHash(base)[LABELS.configHash]).toBe(h);
    expect(configHash({ ...base, labels: labelWithConfigHash(base) })).toBe(h);
  });

  it('treats absent and empty alike and ignores the order of mounts, ports and capabilities', () => {
    expect(configHash({ name: 'a', image: 'i' })).toBe(
      configHash({
        name: 'a',
        image: 'i',
        env: {},
        labels: {},
        mounts: [],
        ports: [],
        cap_add: [],
        command: null,
      }),
    );
    expect(
      configHash({
        ...base,
        mounts: [...(base.mounts ?? [])].reverse(),
        ports: [...(base.ports ?? [])].reverse(),
        cap_add: ['NET_RAW', 'NET_ADMIN'],
        env: { B: '2', A: '1' },
      }),
    ).toBe(configHash(base));
  });

  it.each(mutations)('changes when %s changes', (_name, mutate) => {
    expect(configHash(mutate(base))).not.toBe(configHash(base));
  });

  it('any two different mutations give different hashes (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: mutations.length - 1 }),
        fc.integer({ min: 0, max: mutations.length - 1 }),
        (i, j) => {
          const a = mutations[i]?.[1](base);
          const b = mutations[j]?.[1](base);
          if (a === undefined || b === undefined) return;
          expect(configHash(a) === configHash(b)).toBe(i === j || JSON.stringify(a) === JSON.stringify(b));
        },
      ),
    );
  });

  it('changes for any change of env or command (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 4 }),
        fc.string({ minLength: 1, maxLength: 6 }),
        fc.string({ maxLength: 6 }),
        (env, key, value) => {
          const a = { ...base, env };
          const b = { ...base, env: { ...env, [key]: value } };
          expect(configHash(a) === configHash(b)).toBe(Object.hasOwn(env, key) && env[key] === value);
        },
      ),
    );
  });
});
