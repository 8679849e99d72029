import { inspect } from 'node:util';
import { isPloyzError, type ServiceSpec, StoredServiceSpec } from '@ployz/types';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { revisionId, revisionIdOf } from './revision.ts';
import { InstallationKey, sealSpec, unsealSpec } from './sealed-secrets.ts';

const spec: ServiceSpec = {
  namespace: 'demo',
  name: 'api',
  image: 'ployz/api:1',
  command: null,
  entrypoint: null,
  env: { DATABASE_URL: 'postgres://u:hunter2@db/app', MODE: 'prod' },
  ports: [{ name: 'http', port: 8080, protocol: 'tcp' }],
  routes: [{ kind: 'http', hostnames: ['api.localhost'], path: '/', port: 'http' }],
  readiness: null,
  placement: { mode: 'replicated', replicas: 1, regions: [] },
  mounts: [],
  resources: { cpus: null, memory_bytes: null },
  restart: 'unless_stopped',
  stop_grace_ms: 10_000,
};

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isPloyzError(e) ? e.code : `non-ployz: ${String(e)}`;
  }
  return undefined;
}

describe('sealed env values', () => {
  const key = InstallationKey.generate();

  it('round-trips a spec and stores no plaintext', () => {
    const stored = sealSpec(spec, key);
    expect(StoredServiceSpec.parse(stored)).toEqual(stored);
    const text = JSON.stringify(stored);
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('prod');
    expect(unsealSpec(stored, key)).toEqual(spec);
  });

  it('re-sealing changes the ciphertext but not the macs or the revision id', () => {
    const a = sealSpec(spec, key);
    const b = sealSpec(spec, key);
    expect(a.env.MODE?.box).not.toBe(b.env.MODE?.box);
    expect(a.env.MODE?.mac).toBe(b.env.MODE?.mac);
    expect(revisionId(a)).toBe(revisionId(b));
    expect(revisionId(a)).toBe(revisionIdOf(spec, key));
    expect(revisionId(a)).toMatch(/^rev-[0-9a-f]{32}$/);
  });

  it('revision ids differ across installation keys (no dictionary across installations)', () => {
    const other = InstallationKey.generate();
    expect(revisionIdOf(spec, other)).not.toBe(revisionIdOf(spec, key));
  });

  it('the same value under two names has different macs', () => {
    expect(key.macEnv('A', 'x')).not.toBe(key.macEnv('B', 'x'));
  });

  it('round-trips any env (property)', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string({ maxLength: 40 })),
        (env) => {
          const s = { ...spec, env };
          expect(unsealSpec(sealSpec(s, key), key)).toEqual(s);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('a changed env value changes the revision id (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }), (a, b) => {
        fc.pre(a !== b);
        expect(revisionIdOf({ ...spec, env: { X: a } }, key)).not.toBe(
          revisionIdOf({ ...spec, env: { X: b } }, key),
        );
      }),
      { numRuns: 50 },
    );
  });

  it('a value sealed under another key fails with SECRET_KEY_MISMATCH', () => {
    const stored = sealSpec(spec, InstallationKey.generate());
    expect(errorCode(() => unsealSpec(stored, key))).toBe('SECRET_KEY_MISMATCH');
  });

  it('a tampered box, a swapped name or a forged mac fails with STORE_CORRUPT', () => {
    const stored = sealSpec(spec, key);
    const mode = stored.env.MODE;
    const db = stored.env.DATABASE_URL;
    if (mode === undefined || db === undefined) throw new Error('fixture');
    const bytes = Buffer.from(mode.box, 'base64url');
    bytes[14] = (bytes[14] ?? 0) ^ 1;
    const flipped = {
      ...stored,
      env: { ...stored.env, MODE: { ...mode, box: bytes.toString('base64url') } },
    };
    expect(errorCode(() => unsealSpec(flipped, key))).toBe('STORE_CORRUPT');
    const swapped = { ...stored, env: { MODE: db, DATABASE_URL: mode } };
    expect(errorCode(() => unsealSpec(swapped, key))).toBe('STORE_CORRUPT');
    const forged = { ...stored, env: { ...stored.env, MODE: { ...mode, mac: key.macEnv('MODE', 'dev') } } };
    expect(errorCode(() => unsealSpec(forged, key))).toBe('STORE_CORRUPT');
    const short = { ...stored, env: { ...stored.env, MODE: { ...mode, box: 'AAAA' } } };
    expect(errorCode(() => unsealSpec(short, key))).toBe('STORE_CORRUPT');
  });

  it('error messages name the variable but never its value', () => {
    const stored = sealSpec(spec, key);
    const db = stored.env.DATABASE_URL;
    if (db === undefined) throw new Error('fixture');
    try {
      unsealSpec({ ...stored, env: { DATABASE_URL: { ...db, box: `${db.box.slice(0, -4)}AAAA` } } }, key);
      expect.unreachable();
    } catch (e) {
      expect(String((e as Error).message)).toContain('DATABASE_URL');
      expect(JSON.stringify(e)).not.toContain('hunter2');
    }
  });
});

describe('InstallationKey', () => {
  it('round-trips through its text form and keeps the same kid', () => {
    const key = InstallationKey.generate();
    const again = InstallationKey.fromText(key.toText());
    expect(again.kid).toBe(key.kid);
    expect(key.toText()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(again.macEnv('A', 'b')).toBe(key.macEnv('A', 'b'));
  });

  it('does not show key material in JSON or inspect', () => {
    const key = InstallationKey.generate();
    expect(JSON.stringify(key)).toBe(JSON.stringify({ kid: key.kid }));
    expect(inspect(key)).not.toContain(key.toText());
  });

  it.each(['', 'short', 'A'.repeat(44), '!'.repeat(43)])('rejects malformed key text %j', (text) => {
    expect(errorCode(() => InstallationKey.fromText(text))).toBe('SECRET_KEY_INVALID');
  });

  it('rejects wrong-length bytes', () => {
    expect(errorCode(() => InstallationKey.fromBytes(new Uint8Array(16)))).toBe('SECRET_KEY_INVALID');
    expect(InstallationKey.fromBytes(new Uint8Array(32)).kid).toMatch(/^[0-9a-f]{16}$/);
  });
});
