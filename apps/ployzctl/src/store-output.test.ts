import type { StoragePromotePlanView } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import {
  promotePlanLines,
  promoteProgressLine,
  promoteResultLines,
  storeStatusLines,
} from './store-output.ts';

const plan: StoragePromotePlanView = {
  from: 1,
  to: 3,
  current_storage: 'm1',
  members: [
    {
      machine: 'm1',
      overlay_ip: 'fd70::1',
      region: 'a',
      region_role: 'home_data',
      reachable: true,
      healthy: true,
      rtt_ms: 0.4,
      holds_store_now: true,
    },
    {
      machine: 'm2',
      overlay_ip: 'fd70::2',
      region: 'a',
      region_role: 'home_data',
      reachable: false,
      healthy: false,
      rtt_ms: null,
      holds_store_now: false,
    },
  ],
  regions: ['a'],
  rtt_bound_ms: 50,
  assets: [
    {
      asset: 'cp_deploy_commits_auth-default',
      kind: 'stream',
      messages: 60,
      bytes: 20_480,
      lastId: 'dep-59=2Efinal',
    },
  ],
  messages: 60,
  bytes: 20_480,
  checks: [
    { check: 'reachable', machine: 'm2', ok: false, blocking: true, detail: 'no answer (RPC_TIMEOUT)' },
    { check: 'failure_domains', machine: null, ok: false, blocking: false, detail: 'all three in region a' },
  ],
  refusal: {
    code: 'STORE_PROMOTE_UNHEALTHY',
    message: 'not promoting now: m2 reachable: no answer (RPC_TIMEOUT)',
  },
  promotion: null,
};

/** A promotion record of run r1 by m1 (1 → 3 on m1, m2, m3) in `phase`. */
const promotion = (phase: string, error: { code: string; message: string } | null) => ({
  run: 'r1',
  coordinator: 'm1',
  phase,
  from: 1,
  to: 3,
  members: ['m1', 'm2', 'm3'],
  started_at: 'x',
  updated_at: 'x',
  expires_at: 'y',
  error,
});

describe('promotePlanLines', () => {
  it('members, what moves, each guardrail and the verdict', () => {
    const lines = promotePlanLines(plan);
    expect(lines[0]).toBe('store: 1 → 3 replicas (now on m1)');
    expect(lines.find((l) => l.startsWith('m1'))).toMatch(/^m1\s+a\s+home_data\s+0\.4 ms\s+yes\s+yes\s+yes$/);
    expect(lines.find((l) => l.startsWith('m2'))).toMatch(/^m2\s+a\s+home_data\s+-\s+no\s+no$/);
    expect(lines).toContain('moves 60 messages, 20.0 KiB:');
    expect(lines.find((l) => l.startsWith('cp_deploy_commits'))).toMatch(
      /stream\s+60\s+20\.0 KiB\s+dep-59=2Efinal/,
    );
    expect(lines).toContain('  FAIL reachable m2: no answer (RPC_TIMEOUT)');
    expect(lines).toContain('  warn failure_domains: all three in region a');
    expect(lines.at(-1)).toBe(
      'refused: STORE_PROMOTE_UNHEALTHY: not promoting now: m2 reachable: no answer (RPC_TIMEOUT)',
    );
  });

  it('an applicable plan says that nothing was changed, and shows the last promotion', () => {
    const lines = promotePlanLines({
      ...plan,
      refusal: null,
      promotion: promotion('failed', { code: 'STORE_MIGRATION_FAILED', message: 'boom' }),
    });
    expect(lines).toContain(
      'last promotion: r1 failed (coordinator m1, m1, m2, m3, until y) — STORE_MIGRATION_FAILED: boom',
    );
    expect(lines.at(-1)).toBe('plan: applicable; nothing was changed. Run it again with --yes to apply it.');
  });
});

describe('promote --yes lines', () => {
  it('one line per step, then what was verified, switched and still pending', () => {
    expect(
      promoteProgressLine({
        at: '2026-12-04T23:10:01.234Z',
        step: 'start_member',
        machine: 'm2',
        detail: 'ployz-nats-store created',
      }),
    ).toBe('23:10:01.234 start_member m2: ployz-nats-store created');
    expect(
      promoteProgressLine({ at: '2026-12-04T23:10:02.000Z', step: 'switched', machine: null, detail: 'x' }),
    ).toBe('23:10:02.000 switched: x');
    const lines = promoteResultLines({
      run: 'r9',
      members: ['m1', 'm2', 'm3'],
      verified: [
        { asset: 'a', messages: 40, lastSeq: 40, lastId: null },
        { asset: 'b', messages: 2, lastSeq: 7, lastId: 'd2' },
      ],
      switched: ['m2', 'm1'],
      pending: [{ machine: 'm3', reason: 'RPC_TIMEOUT: no answer' }],
      duration_ms: 4250,
    });
    expect(lines).toContain(
      'store promoted to 3 replicas on m1, m2, m3 (run r9, 4.3 s): 42 messages in 2 assets verified',
    );
    expect(lines).toContain('switched over: m2, m1');
    expect(lines.at(-1)).toBe(
      'not switched yet: m3 (RPC_TIMEOUT: no answer); it switches by itself once it reads the record',
    );
  });
});

describe('storeStatusLines', () => {
  const asset = (name: string, lagging = false) => ({
    asset: name,
    replicas: 3,
    leader: 'm1-store',
    current: lagging ? ['m1-store', 'm2-store'] : ['m1-store', 'm2-store', 'm3-store'],
    lagging: lagging ? [{ server: 'm3-store', lag: 4, active_ms: 5200 }] : [],
  });
  it('replicas and leader, each lagging asset, the promotion', () => {
    expect(
      storeStatusLines({
        replicas: 3,
        leader: 'm1-store',
        assets: [asset('cp_locks_a'), asset('cp_deploy_commits_a', true)],
        promotion: promotion('migrating', null),
        peers: [],
        error: null,
      }),
    ).toEqual([
      'store: R3, leader m1-store; 1 of 2 assets lagging',
      '  cp_deploy_commits_a: current m1-store, m2-store; lagging m3-store (4 behind, seen 5200 ms ago)',
      'store promotion: migrating (1 → 3 on m1, m2, m3, run r1, coordinator m1)',
    ]);
  });
  it('all current; unknown when the store did not answer; nothing from an older daemon', () => {
    expect(
      storeStatusLines({
        replicas: 3,
        leader: 's1',
        assets: [asset('a')],
        promotion: null,
        peers: [],
        error: null,
      }),
    ).toEqual(['store: R3, leader s1; all 1 assets current on every replica']);
    expect(
      storeStatusLines({
        replicas: 0,
        leader: null,
        assets: [],
        promotion: null,
        peers: [],
        error: 'timeout',
      }),
    ).toEqual(['store: unknown (timeout)']);
    expect(storeStatusLines(undefined)).toEqual([]);
  });
  it('names the missing peers, also when the store cannot be read', () => {
    const peers = [
      {
        machine: 'm1',
        server: 'm1-store',
        address: '10.0.0.1:7423',
        reachable: true,
        rtt_ms: 0.4,
        problem: null,
      },
      {
        machine: 'm2',
        server: 'm2-store',
        address: '10.0.0.2:7423',
        reachable: false,
        rtt_ms: null,
        problem: 'no answer in 1000 ms',
      },
      {
        machine: 'm3',
        server: 'm3-store',
        address: '10.0.0.3:7423',
        reachable: false,
        rtt_ms: null,
        problem: 'EHOSTUNREACH',
      },
    ];
    expect(
      storeStatusLines({
        replicas: 3,
        leader: null,
        assets: [],
        promotion: null,
        peers,
        error: 'the store did not answer in 2000 ms',
      }),
    ).toEqual([
      'store: unknown (the store did not answer in 2000 ms); missing peers: m2, m3',
      '  members: m1 ok (0.4 ms), m2 MISSING (no answer in 1000 ms), m3 MISSING (EHOSTUNREACH)',
    ]);
    expect(
      storeStatusLines({
        replicas: 3,
        leader: 'm1-store',
        assets: [asset('a')],
        promotion: null,
        peers: peers.slice(0, 2),
        error: null,
      }),
    ).toEqual([
      'store: R3, leader m1-store; all 1 assets current on every replica',
      '  missing peers: m2',
      '  members: m1 ok (0.4 ms), m2 MISSING (no answer in 1000 ms)',
    ]);
  });
});
