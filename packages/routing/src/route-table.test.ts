import type { RoutingSnapshot } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { httpRoute, instance, machine, REV_A, REV_B, release, revision } from '../test/records.ts';
import { matchRoute, normalizeRequestHost, pathMatches } from './route-match.ts';
import { httpRoutesOf, normalizePathPrefix } from './route-spec.ts';
import { projectRoutes } from './route-table.ts';
import { ProjectionState } from './state.ts';

function table(snapshot: Partial<RoutingSnapshot>) {
  return projectRoutes(
    ProjectionState.fromSnapshot({
      seq: 7,
      machines: [machine('m1'), machine('m2')],
      revisions: [],
      releases: [],
      instances: [],
      ...snapshot,
    }),
  );
}

describe('route specs', () => {
  it('reads the http routes of a stored spec, hostnames and path normalised; skips tcp', () => {
    expect(
      httpRoutesOf({
        routes: [
          { kind: 'http', hostnames: ['A.Example.com.', '*.Apps.example.com'], path: '/api/', port: 'web' },
          { kind: 'tcp', listen: 5432, port: 'pg' },
          {
            kind: 'http',
            hostnames: ['d.example.com'],
            path: '/',
            port: 'http',
            tls: 'auto',
            https_redirect: true,
          },
        ],
      }),
    ).toEqual([
      {
        hostnames: ['a.example.com', '*.apps.example.com'],
        path: '/api',
        port: 'web',
        tlsAuto: false,
        httpsRedirect: false,
      },
      { hostnames: ['d.example.com'], path: '/', port: 'http', tlsAuto: true, httpsRedirect: true },
    ]);
    expect(httpRoutesOf({ routes: [] })).toEqual([]);
    expect(normalizePathPrefix('')).toBe('/');
    expect(normalizePathPrefix('///')).toBe('/');
  });
});

describe('host and path matching', () => {
  it('normalises hosts: case, port, trailing dot, IPv6 brackets', () => {
    expect(normalizeRequestHost('Example.COM:8080')).toBe('example.com');
    expect(normalizeRequestHost('example.com.')).toBe('example.com');
    expect(normalizeRequestHost('[::1]:80')).toBe('::1');
    expect(normalizeRequestHost(undefined)).toBe('');
  });

  it('matches prefixes on segment boundaries only', () => {
    expect(pathMatches('/api', '/api')).toBe(true);
    expect(pathMatches('/api', '/api/x')).toBe(true);
    expect(pathMatches('/api', '/api?x=1')).toBe(true);
    expect(pathMatches('/api', '/apix')).toBe(false);
    expect(pathMatches('/api', '/ap')).toBe(false);
    expect(pathMatches('/', '/anything')).toBe(true);
  });
});

describe('projectRoutes', () => {
  const revisions = [
    revision(REV_A, 'web', [httpRoute(['example.com', '*.example.com']), httpRoute(['example.com'], '/api')]),
    revision(REV_B, 'api', [httpRoute(['example.com'], '/api/v2'), httpRoute(['*.apps.example.com'], '/')]),
  ];
  const releases = [
    release('web', REV_A, [
      { slot: 0, instance: 'web-0' },
      { slot: 1, instance: 'web-1', machine: 'm2' },
    ]),
    release('api', REV_B, [{ slot: 0, instance: 'api-0' }]),
  ];
  const instances = [
    instance('web-0', 'web', 0, REV_A),
    instance('web-1', 'web', 1, REV_A, { machine: 'm2', ip: '10.210.2.11' }),
    instance('web-old', 'web', 0, REV_B),
    instance('api-0', 'api', 0, REV_B, { ports: { http: 9000 } }),
  ];

  it('routes exact hosts, then wildcards, by longest path prefix', () => {
    const t = table({ revisions, releases, instances });
    expect(t.seq).toBe(7);
    expect(t.routeCount).toBe(5);
    const match = (host: string, path: string) => matchRoute(t, host, path)?.id;
    expect(match('example.com', '/')).toBe('example.com');
    expect(match('example.com', '/api')).toBe('example.com/api');
    expect(match('example.com', '/apix')).toBe('example.com');
    expect(match('example.com', '/api/v2/users')).toBe('example.com/api/v2');
    expect(match('example.com', '/api/v20')).toBe('example.com/api');
    expect(match('x.example.com', '/api')).toBe('*.example.com');
    expect(match('x.apps.example.com', '/')).toBe('*.apps.example.com');
    expect(match('deep.x.example.com', '/')).toBe('*.example.com');
    expect(match('other.org', '/')).toBeUndefined();
    expect(match('example.com.evil', '/')).toBeUndefined();
  });

  it('includes only routable active instances, in slot order, on the named port', () => {
    const t = table({ revisions, releases, instances });
    const web = matchRoute(t, 'example.com', '/');
    expect(web?.backends.map((b) => b.key)).toEqual(['10.210.1.10:8080', '10.210.2.11:8080']);
    expect(matchRoute(t, 'example.com', '/api/v2')?.backends.map((b) => b.key)).toEqual(['10.210.1.10:9000']);
  });

  it('keeps the route with no backends when nothing is routable (503, not 404)', () => {
    const t = table({
      revisions,
      releases,
      instances: instances.map((i) => ({ ...i, ready: false })),
    });
    const web = matchRoute(t, 'example.com', '/');
    expect(web?.service).toBe('web');
    expect(web?.backends).toEqual([]);
  });

  it('skips releases whose revision is unknown and reports host/path conflicts', () => {
    const t = table({
      revisions: [
        revision(REV_A, 'web', [httpRoute(['example.com'])]),
        revision(REV_B, 'zzz', [httpRoute(['example.com'])]),
      ],
      releases: [
        release('web', REV_A, [{ slot: 0, instance: 'web-0' }]),
        release('zzz', REV_B, []),
        release('ghost', 'rev-cccccccccccccccc', []),
      ],
      instances,
    });
    expect(t.routeCount).toBe(1);
    expect(t.conflicts).toEqual([{ id: 'example.com', winner: 'default/web', loser: 'default/zzz' }]);
    expect(matchRoute(t, 'example.com', '/')?.service).toBe('web');
  });

  it("uses IPv6 brackets in backend keys and the instance's port named by the route", () => {
    const t = table({
      revisions: [revision(REV_A, 'web', [httpRoute(['v6.test'], '/', 'main')])],
      releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
      instances: [instance('web-0', 'web', 0, REV_A, { ip: 'fd00::5', ports: { admin: 9000, main: 3000 } })],
    });
    expect(matchRoute(t, 'v6.test', '/')?.backends[0]).toMatchObject({
      host: 'fd00::5',
      port: 3000,
      key: '[fd00::5]:3000',
    });
  });

  it('a route naming a port the instance lacks has no backend (503, not another port)', () => {
    const t = table({
      revisions: [revision(REV_A, 'web', [httpRoute(['p.test'], '/', 'admin')])],
      releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
      instances: [instance('web-0', 'web', 0, REV_A, { ports: { http: 8080 } })],
    });
    expect(matchRoute(t, 'p.test', '/')?.backends).toEqual([]);
  });
});
