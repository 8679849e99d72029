/**
 * Revision ids and manifest hashes from real manifest text: independent of TOML vs JSON, key
 * order and whitespace; different whenever any field of a service spec changes.
 */
import { parseManifest, type ServiceSpec } from '@ployz/types';
import fc from 'fast-check';
import { stringify as toToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import { InstallationKey, manifestHash, revisionId, revisionIdOf, sealSpec } from '../src/index.ts';

const key = InstallationKey.fromBytes(new Uint8Array(32).fill(7));

const label = fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/);

/** A valid service input (as a user writes it) whose name is `name`. */
function serviceInput(name: string) {
  return fc.record(
    {
      name: fc.constant(name),
      image: fc.constantFrom(
        'ployz/hello:latest',
        'nginx',
        `registry.local:5000/app@sha256:${'ab'.repeat(32)}`,
      ),
      command: fc.array(fc.string({ maxLength: 8 }), { maxLength: 3 }),
      env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,6}$/), fc.string({ maxLength: 12 }), {
        maxKeys: 4,
      }),
      ports: fc.constant({ http: 8080, admin: { port: 9000, protocol: 'tcp' } }),
      routes: fc.constantFrom(
        [],
        [{ http: { hostnames: [`${name}.localhost`], path: '/', port: 'http' } }],
        [
          {
            http: {
              hostnames: [`${name}.example.com`, `www.${name}.example.com`],
              path: '/api/',
              port: 'http',
            },
          },
        ],
      ),
      readiness: fc.record({
        http: fc.constant({ path: '/healthz', port: 'http' }),
        interval: fc.constantFrom('1s', '500ms', '2s'),
        retries: fc.integer({ min: 1, max: 5 }),
      }),
      placement: fc.oneof(
        fc.record({ replicas: fc.integer({ min: 0, max: 5 }) }),
        fc.constant({ mode: 'global', regions: ['eu', 'us'] }),
      ),
      restart: fc.constantFrom('always', 'unless_stopped', 'on_failure', 'never'),
      stop_grace: fc.constantFrom('10s', '1m', '1m30s'),
      resources: fc.record({
        cpus: fc.constantFrom(0.5, 1, 2),
        memory: fc.constantFrom('256MiB', '1GiB', 1048576),
      }),
    },
    { requiredKeys: ['name', 'image', 'ports'] },
  );
}

const manifestInput = fc
  .uniqueArray(label, { minLength: 1, maxLength: 3 })
  .chain((names) => fc.tuple(...names.map((n) => serviceInput(n))))
  .map((services) => ({ namespace: 'demo', services }));

/** Rebuilds every object with its keys in a random order. */
function shuffleKeys(value: unknown, rand: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rand));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .sort(() => rand() - 0.5)
      .map(([k, v]) => [k, shuffleKeys(v, rand)]),
  );
}

function lcg(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

const ids = (text: string, filename: string) => {
  const m = parseManifest(text, { filename });
  return { revisions: m.services.map((s) => revisionIdOf(s, key)), manifest: manifestHash(m, key) };
};

describe('revision ids and manifest hashes', () => {
  it('are the same from TOML and JSON, any key order and any whitespace (property)', () => {
    fc.assert(
      fc.property(manifestInput, fc.integer(), fc.constantFrom(0, 2, '\t'), (input, seed, indent) => {
        const toml = ids(toToml(input), 'deploy.toml');
        const shuffledToml = ids(toToml(shuffleKeys(input, lcg(seed))), 'deploy.toml');
        const json = ids(JSON.stringify(shuffleKeys(input, lcg(seed + 1)), null, indent), 'deploy.json');
        const padded = ids(`\n\n${toToml(input).replaceAll('\n', '\n\n')}   \n`, 'deploy.toml');
        expect(shuffledToml).toEqual(toml);
        expect(json).toEqual(toml);
        expect(padded).toEqual(toml);
      }),
      { numRuns: 60 },
    );
  });

  it('the stored (sealed) revision id equals the one computed before sealing (property)', () => {
    fc.assert(
      fc.property(manifestInput, (input) => {
        for (const s of parseManifest(JSON.stringify(input), { format: 'json' }).services) {
          expect(revisionId(sealSpec(s, key))).toBe(revisionIdOf(s, key));
        }
      }),
      { numRuns: 30 },
    );
  });

  /** One change to each field of a service spec. */
  const mutations: [string, (s: ServiceSpec) => ServiceSpec][] = [
    ['namespace', (s) => ({ ...s, namespace: `${s.namespace}x` })],
    ['name', (s) => ({ ...s, name: `${s.name}x` })],
    ['image', (s) => ({ ...s, image: `${s.image}x` })],
    ['command', (s) => ({ ...s, command: [...(s.command ?? []), 'x'] })],
    ['entrypoint', (s) => ({ ...s, entrypoint: ['/bin/sh'] })],
    ['env added', (s) => ({ ...s, env: { ...s.env, ADDED_BY_TEST: '' } })],
    ['port number', (s) => ({ ...s, ports: s.ports.map((p) => ({ ...p, port: p.port + 1 })) })],
    ['port protocol', (s) => ({ ...s, ports: s.ports.map((p) => ({ ...p, protocol: 'udp' as const })) })],
    ['route added', (s) => ({ ...s, routes: [...s.routes, { kind: 'tcp', listen: 5432, port: 'http' }] })],
    [
      'readiness',
      (s) => ({
        ...s,
        readiness:
          s.readiness === null
            ? {
                kind: 'exec',
                command: ['true'],
                interval_ms: 1,
                timeout_ms: 1,
                retries: 1,
                start_period_ms: 0,
              }
            : null,
      }),
    ],
    ['placement', (s) => ({ ...s, placement: { mode: 'replicated', replicas: 42, regions: [] } })],
    ['mounts', (s) => ({ ...s, mounts: [{ kind: 'tmpfs', target: '/tmp', size_bytes: null }] })],
    ['cpus', (s) => ({ ...s, resources: { ...s.resources, cpus: 99 } })],
    ['memory', (s) => ({ ...s, resources: { ...s.resources, memory_bytes: 12345 } })],
    ['restart', (s) => ({ ...s, restart: s.restart === 'always' ? 'never' : 'always' })],
    ['stop grace', (s) => ({ ...s, stop_grace_ms: s.stop_grace_ms + 1 })],
  ];

  it('change when any field of a service spec changes (property)', () => {
    fc.assert(
      fc.property(manifestInput, fc.constantFrom(...mutations), (input, [, mutate]) => {
        const m = parseManifest(JSON.stringify(input), { format: 'json' });
        const s = m.services[0];
        if (s === undefined) return;
        expect(revisionIdOf(mutate(s), key)).not.toBe(revisionIdOf(s, key));
        const changed = { ...m, services: [mutate(s), ...m.services.slice(1)] };
        expect(manifestHash(changed, key)).not.toBe(manifestHash(m, key));
      }),
      { numRuns: 80 },
    );
  });

  it('change when an env value changes, without the value appearing anywhere stored', () => {
    const m = parseManifest(
      'namespace = "demo"\n[[services]]\nname = "a"\nimage = "i"\nenv = { TOKEN = "s3cret-value" }\n',
      { filename: 'deploy.toml' },
    );
    const s = m.services[0];
    if (s === undefined) throw new Error('fixture');
    const other = { ...s, env: { TOKEN: 's3cret-valuf' } };
    expect(revisionIdOf(other, key)).not.toBe(revisionIdOf(s, key));
    expect(JSON.stringify(sealSpec(s, key))).not.toContain('s3cret');
  });

  it('the manifest hash changes with volumes and phases', () => {
    const base = parseManifest(
      'namespace = "demo"\n[[services]]\nname = "a"\nimage = "i"\n[[volumes]]\nname = "v"\n',
      { filename: 'deploy.toml' },
    );
    const volume = {
      name: 'v',
      quota_bytes: 1,
      scope: 'single' as const,
      owner: null,
      mode: null,
      keep_snapshots: 10,
    };
    const quota = { ...base, volumes: [volume] };
    const phased = {
      ...base,
      phases: base.phases.map((p) => ({ ...p, commit_policy: 'checkpoint' as const })),
    };
    const h = manifestHash(base, key);
    expect(manifestHash(quota, key)).not.toBe(h);
    expect(manifestHash(phased, key)).not.toBe(h);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
  });
});
