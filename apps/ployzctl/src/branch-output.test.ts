import { DeployDetailView, type DeployPlanView } from '@ployz/protocol';
import type { Lineage } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { branchPlanLines } from './branch-output.ts';
import { detailLines } from './deploy-output.ts';
import { lineageLines } from './lineage-output.ts';

const AT = '2026-11-21T23:00:00.000Z';

const snapshot = {
  volume: 'data',
  slot: null,
  machine: 'm1',
  driver: 'btrfs' as const,
  dataset: '/v/shop/data',
  id: 'bde4f833-fb11-7c48-81cc-b4574b0ad33b',
  label: 'dep-0mwr1svvsabcdefgh',
  at: AT,
  bytes: 1 << 30,
};

const lineage: Lineage = {
  kind: 'branch',
  from_namespace: 'shop',
  from_deploy: 'dep-0mwr1svvsabcdefgh',
  host_suffix: 'pr-7',
  services: [
    {
      service: 'web',
      from_revision: 'rev-0123456789abcdef0123',
      from_deploy: 'dep-0mwr1svvsabcdefgh',
      overridden: false,
    },
    { service: 'admin', from_revision: null, from_deploy: null, overridden: true },
  ],
  volumes: [
    { volume: 'data', slot: null, data: 'clone', snapshot, previous: null },
    { volume: 'cache', slot: null, data: 'empty', snapshot: null, previous: null },
  ],
};

const plan: DeployPlanView = {
  namespace: 'shop-pr-7',
  manifest_hash: 'abcdef0123456789',
  changed: true,
  services: [],
  phases: [],
  volumes: [
    {
      volume: 'data',
      machine: 'm1',
      scope: 'single',
      action: 'clone',
      detail: 'copy-on-write clone of shop/data at its snapshot at commit of dep-0mwr1svvsabcdefgh',
    },
  ],
  images: [],
  rollback_of: null,
  lineage,
  summary: { create: 2, replace: 0, update: 0, remove: 0, unchanged: 0, starts: 2, stops: 0 },
};

describe('branch output', () => {
  it('prints where each service and volume came from', () => {
    expect(lineageLines(lineage)).toEqual([
      'branch of shop at dep-0mwr1svvsabcdefgh, host suffix pr-7',
      '  service web                ← shop/web rev-0123456789ab (dep-0mwr1svvsabcdefgh)',
      '  service admin              ← new in the branch manifest',
      '  volume  data               clone of shop/data at dep-0mwr1svvsabcdefgh (btrfs bde4f833-fb1, 1.1 GB referenced)',
      '  volume  cache              empty (not cloned)',
    ]);
    const promoted = lineageLines({
      ...lineage,
      kind: 'promote',
      from_namespace: 'shop-pr-7',
      volumes: [
        {
          volume: 'data',
          slot: null,
          data: 'replaced',
          snapshot: { ...snapshot, label: 'dep-2-promote' },
          previous: { ...snapshot, label: 'dep-2-pre' },
        },
      ],
    });
    expect(promoted[0]).toBe('promote of the branch shop-pr-7 at dep-0mwr1svvsabcdefgh, host suffix pr-7');
    expect(promoted.at(-1)).toMatch(
      /replaced by shop-pr-7\/data at dep-2-promote .*; its own data kept as dep-2-pre/,
    );
  });

  it('a preview shows the lineage, every route change and the plan', () => {
    const lines = branchPlanLines({
      plan,
      routes: [
        {
          service: 'web',
          kind: 'http',
          from: 'shop.example.com/',
          to: 'pr-7.shop.example.com/',
          detail: '--host-suffix',
        },
        { service: 'web', kind: 'tcp', from: ':7000', to: null, detail: 'dropped: a tcp listen port…' },
      ],
    });
    expect(lines[0]).toBe('branch of shop at dep-0mwr1svvsabcdefgh, host suffix pr-7');
    expect(lines).toContain('Routes:');
    expect(lines).toContain(
      '  web                  http shop.example.com/ → pr-7.shop.example.com/ (--host-suffix)',
    );
    expect(lines).toContain('  web                  tcp :7000 (dropped: a tcp listen port…)');
    expect(lines.some((l) => /\+ data +clone +on m1: copy-on-write clone of shop\/data/.test(l))).toBe(true);
  });

  it('deploy show prints the lineage and the source revision of each committed service', () => {
    const id = 'dep-0mx0000000000000a';
    const detail = DeployDetailView.parse({
      status: {
        deploy_id: id,
        namespace: 'shop-pr-7',
        state: 'committed',
        manifest_hash: 'h1',
        phases: ['default'],
        commits: [`${id}.final`],
        actor: 'test',
        step: 9,
        error: null,
        started_at: AT,
        updated_at: AT,
      },
      phases: [],
      commits: [
        {
          id: `${id}.final`,
          deploy_id: id,
          namespace: 'shop-pr-7',
          kind: 'final',
          phase: null,
          manifest_hash: 'h1',
          services: [
            {
              service: 'web',
              revision: 'rev-1111111111111111',
              slots: [{ slot: 0, machine: 'm1', instance: 'web-0-a' }],
              source_revision: 'rev-0123456789abcdef0123',
            },
          ],
          removed_services: [],
          lineage,
          actor: 'test',
          created_at: AT,
        },
      ],
    });
    const lines = detailLines(detail);
    expect(lines).toContain('lineage    branch of shop at dep-0mwr1svvsabcdefgh, host suffix pr-7');
    expect(lines.some((l) => l.includes('volume  data') && l.includes('clone of shop/data'))).toBe(true);
    expect(lines.some((l) => l.endsWith('← rev-0123456789abcdef0123'))).toBe(true);
  });
});
