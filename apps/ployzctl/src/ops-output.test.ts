import type { PsView } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import { logEntryLine, namespaceLines, parseSince, parseTarget, psLines } from './ops-output.ts';

describe('parseTarget', () => {
  it('reads <namespace>/<service> and refuses anything else with INVALID_ARGUMENT', () => {
    expect(parseTarget('shop/web')).toEqual({ namespace: 'shop', service: 'web' });
    for (const bad of ['shop', 'shop/', '/web', 'Shop/web', 'a/b/c'])
      expect(() => parseTarget(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('parseSince', () => {
  const now = new Date('2026-12-02T10:00:00.000Z');
  it('takes a duration before now or an RFC 3339 time', () => {
    expect(parseSince('10m', now)).toBe('2026-12-02T09:50:00.000Z');
    expect(parseSince('2h', now)).toBe('2026-12-02T08:00:00.000Z');
    expect(parseSince('2026-12-01T00:00:00+01:00', now)).toBe('2026-12-01T00:00:00+01:00');
    expect(() => parseSince('yesterday', now)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('psLines', () => {
  it('prints one row per instance with the routable reason and marks one outside the release', () => {
    const view: PsView = {
      at: '2026-12-02T10:05:00.000Z',
      services: [
        {
          namespace: 'shop',
          service: 'web',
          revision: 'rev-a',
          deploy: 'dep-1',
          instances: [
            {
              instance: 'shop-web-0-aaaa',
              slot: 0,
              machine: 'm1',
              state: 'running',
              ready: true,
              unroutable: null,
              active: true,
              revision: 'rev-a',
              deploy: 'dep-1',
              ip: '10.0.0.16',
              ports: { http: 8080 },
              created_at: '2026-12-02T10:00:00.000Z',
              error: null,
            },
            {
              instance: 'shop-web-0-bbbb',
              slot: 0,
              machine: 'm2',
              state: 'starting',
              ready: false,
              unroutable: 'not_running',
              active: false,
              revision: 'rev-b',
              deploy: 'dep-2',
              ip: null,
              ports: {},
              created_at: '2026-12-02T10:04:30.000Z',
              error: null,
            },
          ],
        },
      ],
    };
    const lines = psLines(view);
    expect(lines[0]).toMatch(
      /^SERVICE\s+INSTANCE\s+MACHINE\s+STATE\s+READY\s+REVISION\s+DEPLOY\s+AGE\s+PORTS$/,
    );
    expect(lines[1]?.split(/\s{2,}/)).toEqual([
      'shop/web',
      'shop-web-0-aaaa',
      'm1',
      'running',
      'yes',
      'rev-a',
      'dep-1',
      '5m',
      'http:8080',
    ]);
    expect(lines[2]).toContain('shop-web-0-bbbb*');
    expect(lines[2]).toContain('no (not_running)');
    expect(lines[2]).toContain('30s');
  });
});

describe('logEntryLine and namespaceLines', () => {
  it('prefixes a line with instance and machine, stderr marked', () => {
    const line = {
      type: 'line' as const,
      at: '2026-12-02T10:00:00.000000000Z',
      instance: 'i1',
      machine: 'm2',
      stream: 'stderr' as const,
      text: 'oops',
    };
    expect(logEntryLine(line, false)).toBe('i1@m2 ! | oops');
    expect(logEntryLine({ ...line, stream: 'stdout' }, true)).toBe(
      '2026-12-02T10:00:00.000000000Z i1@m2 | oops',
    );
    expect(logEntryLine({ type: 'instance', event: 'joined', instance: 'i2', machine: 'm1' }, false)).toBe(
      '[i2@m1 joined]',
    );
  });

  it('lists namespaces with routable/all instances and their hostnames', () => {
    const [head, row] = namespaceLines(
      [
        {
          namespace: 'shop',
          services: ['api', 'web'],
          instances: 3,
          routable: 2,
          hostnames: ['shop.example'],
          last_deploy: null,
        },
      ],
      new Date(),
    );
    expect(head).toMatch(/^NAMESPACE\s+SERVICES\s+INSTANCES\s+HOSTNAMES\s+LAST DEPLOY$/);
    expect(row?.split(/\s{2,}/)).toEqual(['shop', 'api,web', '2/3', 'shop.example', '-']);
  });
});
