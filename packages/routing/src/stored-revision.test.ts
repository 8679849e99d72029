/**
 * A revision as ployzd stores it projects to the routes its manifest declares. The spec comes
 * from the same `parseManifest` ployzd runs (@ployz/types); sealing is mirrored, not called:
 * @ployz/identity's `sealSpec` is `{ ...spec, env: <each value sealed> }` and routing does not
 * depend on identity, so the env values here are well-formed fixtures (`fixtures.sealedValue`).
 * The record then goes through JSON and the record schemas, as through the store and the stream.
 */
import { fixtures } from '@ployz/testkit';
import {
  parseManifest,
  RevisionRecord,
  RoutingEvent,
  type ServiceSpec,
  type StoredServiceSpec,
} from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { instance, machine, release } from '../test/records.ts';
import { matchRoute } from './route-match.ts';
import { projectRoutes } from './route-table.ts';
import { ProjectionState } from './state.ts';

const MANIFEST = `
namespace = "shop"

[[services]]
name = "web"
image = "ployz/hello:latest"
ports = { http = 8080, admin = 9000 }
env = { PORT = "8080", API_TOKEN = "s3cret" }

[[services.routes]]
http = { hostnames = ["shop.example.com", "*.shop.example.com"], port = "http" }

[[services.routes]]
http = { hostnames = ["shop.example.com"], path = "/admin/", port = "admin" }

[[services.routes]]
tcp = { listen = 7000, port = "http" }
`;

/** Mirrors @ployz/identity `sealSpec`: every env value sealed, everything else as parsed. */
function sealLike(spec: ServiceSpec): StoredServiceSpec {
  const env = Object.fromEntries(Object.keys(spec.env).map((k, i) => [k, fixtures.sealedValue(i)]));
  return { ...spec, env };
}

const REV = 'rev-5eed5eed5eed5eed5eed5eed5eed5eed';

/** Mirrors ployzd's `sealedRevisionCodec.toRecord`, then a JSON round trip and the store's read schema. */
function storedRevision(): RevisionRecord {
  const spec = parseManifest(MANIFEST, { filename: 'deploy.toml' }).services[0];
  if (spec === undefined) throw new Error('the manifest has a service');
  const written: RevisionRecord = {
    id: REV,
    namespace: 'shop',
    service: spec.name,
    spec: sealLike(spec),
    created_at: fixtures.AT,
  };
  return RevisionRecord.parse(JSON.parse(JSON.stringify(written)));
}

describe('a revision stored the way ployzd stores it', () => {
  it('keeps its spec through the record schemas, env sealed', () => {
    const revision = storedRevision();
    expect(JSON.stringify(revision)).not.toContain('s3cret');
    expect(revision.spec.routes).toEqual([
      { kind: 'http', hostnames: ['shop.example.com', '*.shop.example.com'], path: '/', port: 'http' },
      { kind: 'http', hostnames: ['shop.example.com'], path: '/admin', port: 'admin' },
      { kind: 'tcp', listen: 7000, port: 'http' },
    ]);
    const event = RoutingEvent.parse({
      type: 'revision_stored',
      revision,
      deploy_id: 'dep-1',
      at: fixtures.AT,
    });
    expect(event).toMatchObject({ revision });
  });

  it('projects to its http routes, each to the named port of the active instances', () => {
    const rev = storedRevision();
    const ports = { http: 8080, admin: 9000 };
    const table = projectRoutes(
      ProjectionState.fromSnapshot({
        seq: 3,
        machines: [machine('m1'), machine('m2')],
        revisions: [rev],
        releases: [
          release(
            'web',
            REV,
            [
              { slot: 0, instance: 'web-0', machine: 'm1' },
              { slot: 1, instance: 'web-1', machine: 'm2' },
            ],
            'shop',
          ),
        ],
        instances: [
          instance('web-0', 'web', 0, REV, { namespace: 'shop', machine: 'm1', ports }),
          instance('web-1', 'web', 1, REV, { namespace: 'shop', machine: 'm2', ports }),
        ],
      }),
    );

    expect(table.conflicts).toEqual([]);
    expect(table.routeCount).toBe(3);
    const root = matchRoute(table, 'shop.example.com', '/cart');
    expect(root).toMatchObject({ id: 'shop.example.com', namespace: 'shop', service: 'web' });
    expect(root?.backends.map((b) => b.key)).toEqual(['10.210.1.10:8080', '10.210.1.11:8080']);
    const admin = matchRoute(table, 'shop.example.com', '/admin/users');
    expect(admin).toMatchObject({ id: 'shop.example.com/admin', path: '/admin' });
    expect(admin?.backends.map((b) => b.key)).toEqual(['10.210.1.10:9000', '10.210.1.11:9000']);
    expect(matchRoute(table, 'eu.shop.example.com', '/')?.id).toBe('*.shop.example.com');
    expect(matchRoute(table, 'shop.example.com', '/administrator')?.id).toBe('shop.example.com');
  });
});
