import { describe, expect, it } from 'vitest';
import { instance, machine, REV_A, REV_B, release } from '../test/records.ts';
import { projectDns } from './dns-projection.ts';
import { ProjectionState } from './state.ts';

function stateOf(parts: {
  releases: ReturnType<typeof release>[];
  instances: ReturnType<typeof instance>[];
  seq?: number;
}): ProjectionState {
  return ProjectionState.fromSnapshot({
    seq: parts.seq ?? 7,
    machines: [machine('m1'), machine('m2')],
    revisions: [],
    releases: parts.releases,
    instances: parts.instances,
  });
}

describe('projectDns', () => {
  const web0 = instance('web-0', 'web', 0, REV_A, { ip6: 'fd00::10', ports: { http: 8080, admin: 9000 } });
  const web1 = instance('web-1', 'web', 1, REV_A, { machine: 'm2' });
  const webOld = instance('web-old', 'web', 0, REV_B, { ip: '10.210.1.99' });
  const api0 = instance('api-0', 'api', 0, REV_A, { namespace: 'shop', ip: '10.210.1.50', ports: {} });
  const state = stateOf({
    releases: [
      release('web', REV_A, [
        { slot: 0, instance: 'web-0' },
        { slot: 1, instance: 'web-1', machine: 'm2' },
      ]),
      release('api', REV_A, [{ slot: 0, instance: 'api-0' }], 'shop'),
    ],
    instances: [webOld, web1, web0, api0],
  });
  const view = projectDns(state);

  it('gives a service the addresses of its routable instances only', () => {
    const web = view.names.get('web.default.ployz.internal');
    expect(web?.a).toEqual(['10.210.1.10', '10.210.1.11']);
    expect(web?.aaaa).toEqual(['fd00::10']);
    expect(view.names.has('web-old.web.default.ployz.internal')).toBe(false);
    expect(view.names.get('api.shop.ployz.internal')?.a).toEqual(['10.210.1.50']);
  });

  it('names each routable instance and its named ports as SRV', () => {
    expect(view.names.get('web-0.web.default.ployz.internal')?.a).toEqual(['10.210.1.10']);
    expect(view.names.get('_admin._tcp.web.default.ployz.internal')?.srv).toEqual([
      { priority: 0, weight: 10, port: 9000, target: 'web-0.web.default.ployz.internal' },
    ]);
    expect(view.names.get('_http._tcp.web.default.ployz.internal')?.srv.map((s) => s.target)).toEqual([
      'web-0.web.default.ployz.internal',
      'web-1.web.default.ployz.internal',
    ]);
  });

  it('keeps empty non-terminals and the apex as names without records', () => {
    for (const name of [
      'ployz.internal',
      'default.ployz.internal',
      'shop.ployz.internal',
      '_tcp.web.default.ployz.internal',
    ]) {
      expect(view.names.get(name), name).toEqual({ a: [], aaaa: [], srv: [] });
    }
    expect(view.names.has('_tcp.api.shop.ployz.internal')).toBe(false);
  });

  it('maps the address of every live instance, routable or not, to its namespace', () => {
    expect(view.callers.get('10.210.1.99')).toBe('default');
    expect(view.callers.get('10.210.1.50')).toBe('shop');
    expect(view.callers.get('fd00::10')).toBe('default');
    const longForm = projectDns(
      stateOf({
        releases: [],
        instances: [instance('y', 'y', 0, REV_A, { ip: null, ip6: 'FD00:0:0:0::00AB' })],
      }),
    );
    expect(longForm.callers.get('fd00::ab')).toBe('default');
    const stopped = projectDns(
      stateOf({
        releases: [],
        instances: [instance('x', 'x', 0, REV_A, { state: 'stopped', ip: '10.0.0.9' })],
      }),
    );
    expect(stopped.callers.has('10.0.0.9')).toBe(false);
  });

  it('keeps a service with no routable instance as a name (NODATA, not NXDOMAIN)', () => {
    const drained = projectDns(
      stateOf({
        releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
        instances: [{ ...web0, draining: true }],
      }),
    );
    expect(drained.names.get('web.default.ployz.internal')).toEqual({ a: [], aaaa: [], srv: [] });
    expect(drained.names.has('web-0.web.default.ployz.internal')).toBe(false);
  });

  it('is independent of input order and carries the sequence', () => {
    const reversed = projectDns(
      stateOf({ releases: [...state.releases.values()].reverse(), instances: [api0, web0, web1, webOld] }),
    );
    expect([...reversed.names.entries()].sort()).toEqual([...view.names.entries()].sort());
    expect(view.seq).toBe(7);
  });
});
