import type { DeployStatusRecord, ReleaseRecord, RouteSpec } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { instanceRecord, machine, service, testCodec } from '../../test/fakes/sample-records.ts';
import { assertNamespaceKnown, namespaceViews, removalManifest } from './namespaces.ts';

const at = '2026-01-01T00:00:00.000Z';
const http = (hostnames: string[]): RouteSpec => ({ kind: 'http', hostnames, path: '/', port: 'http' });

function release(namespace: string, svc: string, revision: string, instances: string[]): ReleaseRecord {
  return {
    namespace,
    service: svc,
    revision,
    deploy: 'dep-1',
    slots: instances.map((instance, slot) => ({ slot, machine: 'm1', instance })),
    updated_at: at,
  };
}

const instance = (id: string, namespace: string, service: string, revision: string, ready = true) =>
  instanceRecord(id, { namespace, service, revision, ready });

describe('namespaceViews', () => {
  it('lists each namespace with its services, routable/all instances, hostnames and last deploy', () => {
    const web = testCodec().toRecord(
      'shop',
      service('web', { routes: [http(['shop.example', 'www.shop.example'])] }),
      at,
    );
    const api = testCodec().toRecord('shop', service('api', { routes: [http(['api.shop.example'])] }), at);
    const last = { deploy_id: 'dep-9', namespace: 'shop', state: 'committed' } as DeployStatusRecord;
    const views = namespaceViews({
      releases: [release('shop', 'web', web.id, ['w0']), release('shop', 'api', api.id, ['a0'])],
      instances: [instance('w0', 'shop', 'web', web.id), instance('a0', 'shop', 'api', api.id, false)],
      machines: [machine('m1')],
      revisions: new Map([
        [web.id, web],
        [api.id, api],
      ]),
      lastDeploys: new Map([['shop', last]]),
    });
    expect(views).toEqual([
      {
        namespace: 'shop',
        services: ['api', 'web'],
        instances: 2,
        routable: 1,
        hostnames: ['api.shop.example', 'shop.example', 'www.shop.example'],
        last_deploy: last,
      },
    ]);
  });
});

describe('removal', () => {
  it('is a manifest without services whose hash names the removal', () => {
    const m = removalManifest('shop');
    expect(m).toMatchObject({ namespace: 'shop', services: [], phases: [], volumes: [] });
    expect(m.manifest_hash).toMatch(/^removal:[0-9a-f]{32}$/);
    expect(removalManifest('blog').manifest_hash).not.toBe(m.manifest_hash);
  });

  it('is NAMESPACE_UNKNOWN for a namespace with nothing stored', () => {
    expect(() => assertNamespaceKnown('shop', [], [])).toThrow(
      expect.objectContaining({ code: 'NAMESPACE_UNKNOWN' }),
    );
    expect(() => assertNamespaceKnown('shop', [], [instance('x', 'shop', 'web', 'r')])).not.toThrow();
  });
});
