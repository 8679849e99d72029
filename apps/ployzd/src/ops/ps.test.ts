import type { InstanceRecord, ReleaseRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { instanceRecord, machine } from '../../test/fakes/sample-records.ts';
import { psView } from './ps.ts';

const at = '2026-12-02T10:00:00.000Z';

const instance = (id: string, slot: number, over: Partial<InstanceRecord> = {}) =>
  instanceRecord(id, { slot, ports: { http: 8080 }, created_at: at, updated_at: at, ...over });

const release: ReleaseRecord = {
  namespace: 'shop',
  service: 'web',
  revision: 'rev-a',
  deploy: 'dep-1',
  slots: [
    { slot: 0, machine: 'm1', instance: 'i0' },
    { slot: 1, machine: 'm2', instance: 'i1' },
  ],
  updated_at: at,
};

describe('psView', () => {
  it('lists each instance under its service with the routable reason when traffic skips it', () => {
    const view = psView({
      releases: [release],
      instances: [
        instance('i1', 1, { machine: 'm2', ready: false }),
        instance('i0', 0),
        instance('cand', 0, { revision: 'rev-b', deploy: 'dep-2', state: 'starting', ready: false }),
      ],
      machines: [machine('m1'), machine('m2')],
      at,
    });
    expect(view.services).toHaveLength(1);
    const [web] = view.services;
    expect(web?.revision).toBe('rev-a');
    expect(web?.instances.map((i) => [i.instance, i.machine, i.active, i.unroutable])).toEqual([
      ['i0', 'm1', true, null],
      ['cand', 'm1', false, 'not_running'],
      ['i1', 'm2', true, 'not_ready'],
    ]);
    expect(web?.instances[0]?.ports).toEqual({ http: 8080 });
  });

  it('filters by namespace and shows a release without instances', () => {
    const other = { ...release, namespace: 'blog', service: 'api', slots: [] };
    const view = psView({ releases: [release, other], instances: [], machines: [], at, namespace: 'blog' });
    expect(view.services.map((s) => [s.namespace, s.service, s.instances.length])).toEqual([
      ['blog', 'api', 0],
    ]);
  });

  it('names an instance no release points at under its service, revision unknown', () => {
    const view = psView({ releases: [], instances: [instance('orphan', 0)], machines: [machine('m1')], at });
    expect(view.services[0]?.revision).toBeNull();
    expect(view.services[0]?.instances[0]?.unroutable).toBe('no_release');
  });
});
