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
  it('reads nested, flat and port-in-http shapes; skips tcp and junk', () => {
    expect(
      httpRoutesOf({
        routes: [
          { http: { hostnames: ['A.Example.com.'], path: 'api/' }, port: 'web' },
          { hostnames: ['b.example.com'] },
          { http: { hostnames: 'c.example.com', port: 'admin' } },
          { tcp: { listen: 5432 }, port: 'pg' },
          { kind: 'tcp', listen: 5432, port: 'pg', hostnames: ['x.example.com'] },
          { kind: 'http', hostnames: ['d.example.com'], path: '/v1/', port: 'http' },
          { http: { hostnames: [] } },
          42,
        ],
      }),
    ).toEqual([
      { hostnames: ['a.example.com'], path: '/api', port: 'web' },
      { hostnames: ['b.example.com'], path: '/', port: null },
      { hostnames: ['c.example.com'], path: '/', port: 'admin' },
      { hostnames: ['d.example.com'], path: '/v1', port: 'http' },
    ]);
    expect(httpRoutesOf({})).toEqual([]);
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

  it('uses IPv6 brackets in backend keys and the only port when the route names none', () => {
    const t = table({
      revisions: [revision(REV_A, 'web', [{ http: { hostnames: ['v6.test'] } }])],
      releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
      instances: [instance('web-0', 'web', 0, REV_A, { ip: 'fd00::5', ports: { main: 3000 } })],
    });
    expect(matchRoute(t, 'v6.test', '/')?.backends[0]).toMatchObject({
      host: 'fd00::5',
      key: '[fd00::5]:3000',
    });
  });
});
