/**
 * `RevisionRecord.spec` is a `StoredServiceSpec`: what ployzd writes (a parsed ServiceSpec with env
 * sealed) reads back unchanged; the route shapes never written by ployzd are refused, naming
 * where under `spec` (the store turns that into STORE_CORRUPT on read).
 */
import { describe, expect, it } from 'vitest';
import { parseManifest, RevisionRecord, type StoredServiceSpec } from '../src/index.ts';

const SEALED = { kid: '0123456789abcdef', mac: 'A'.repeat(43), box: 'c2VhbGVk' };

function written(): RevisionRecord {
  const spec = parseManifest(
    `namespace = "demo"
[[services]]
name = "hello"
image = "ployz/hello:latest"
ports = { http = 8080 }
env = { PORT = "8080" }
[[services.routes]]
http = { hostnames = ["hello.localhost"] }
[services.readiness]
http = { path = "/healthz" }
`,
    { filename: 'deploy.toml' },
  ).services[0];
  if (spec === undefined) throw new Error('one service');
  // What @ployz/identity sealSpec returns: the parsed spec, each env value sealed.
  const stored: StoredServiceSpec = { ...spec, env: { PORT: SEALED } };
  return {
    id: 'rev-0123456789abcdef',
    namespace: 'demo',
    service: 'hello',
    spec: stored,
    created_at: '2026-12-01T00:00:00.000Z',
  };
}

describe('RevisionRecord.spec', () => {
  it("reads the current writer's shape back unchanged", () => {
    const record = written();
    expect(RevisionRecord.parse(JSON.parse(JSON.stringify(record)))).toEqual(record);
  });

  it('reads a spec written before readiness.start_timeout_ms existed', () => {
    const record = written();
    expect(record.spec.readiness).not.toBeNull();
    expect(record.spec.readiness).not.toHaveProperty('start_timeout_ms');
    expect(RevisionRecord.safeParse(record).success).toBe(true);
  });

  it.each([
    ['manifest input route', { http: { hostnames: ['hello.localhost'], path: '/' } }],
    ['flat route', { hostnames: ['hello.localhost'] }],
    ['route without a port', { kind: 'http', hostnames: ['hello.localhost'], path: '/' }],
  ])('refuses a %s under spec.routes', (_what, route) => {
    const record = { ...written(), spec: { ...written().spec, routes: [route] } };
    const parsed = RevisionRecord.safeParse(record);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path.slice(0, 3))).toContainEqual(['spec', 'routes', 0]);
  });

  it('refuses plaintext env and a spec that is only routes', () => {
    const plain = { ...written(), spec: { ...written().spec, env: { PORT: '8080' } } };
    expect(RevisionRecord.safeParse(plain).error?.issues[0]?.path).toEqual(['spec', 'env', 'PORT']);
    const partial = { ...written(), spec: { routes: [] } };
    expect(RevisionRecord.safeParse(partial).success).toBe(false);
  });
});
