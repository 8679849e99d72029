import { DeployDetailView, DeployEvent, type DeployPlanView } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import { detailLines, eventLine, imagePushLines, planLines, previewExitCode } from './deploy-output.ts';

const plan = (changed: boolean): DeployPlanView => ({
  namespace: 'demo',
  manifest_hash: 'abcdef0123456789',
  changed,
  services: [
    {
      service: 'hello',
      action: changed ? 'replace' : 'unchanged',
      revision: 'rev-2222222222222222',
      previous_revision: 'rev-1111111111111111',
      phase: 'default',
      slots: [{ slot: 0, machine: 'm1', instance: 'demo-hello-0-new', action: changed ? 'start' : 'keep' }],
      stops: changed ? [{ slot: 0, machine: 'm1', instance: 'demo-hello-0-old', reason: 'replaced' }] : [],
    },
  ],
  phases: [
    {
      id: 'default',
      index: 0,
      commit_policy: 'end_of_deploy',
      services: ['hello'],
      starts: changed ? 1 : 0,
      does: 'start 1 candidate(s)',
    },
  ],
  volumes: [],
  images: [],
  rollback_of: null,
  lineage: null,
  summary: {
    create: 0,
    replace: changed ? 1 : 0,
    update: 0,
    remove: 0,
    unchanged: changed ? 0 : 1,
    starts: changed ? 1 : 0,
    stops: changed ? 1 : 0,
  },
});

describe('deploy output', () => {
  it('a clean preview says "No changes" and exits 0; a changed one lists work and exits 3', () => {
    expect(planLines(plan(false))).toEqual([
      'No changes. Namespace demo matches the manifest (1 service(s) unchanged).',
    ]);
    expect(previewExitCode(plan(false))).toBe(0);
    const lines = planLines(plan(true));
    expect(lines).toContain('      slot 0 on m1: start demo-hello-0-new');
    expect(lines).toContain('      slot 0 on m1: stop demo-hello-0-old (replaced)');
    expect(lines.at(-1)).toMatch(/^Plan: 0 to create, 1 to replace/);
    expect(previewExitCode(plan(true))).toBe(3);
  });

  it('a rollback preview names its target and what each volume does', () => {
    const lines = planLines({
      ...plan(true),
      rollback_of: 'dep-1',
      volumes: [
        {
          volume: 'data',
          machine: 'm1',
          scope: 'single',
          action: 'revert',
          detail: 'to the snapshot of dep-1',
        },
        { volume: 'cache', machine: 'm1', scope: 'single', action: 'no_snapshots', detail: 'dir storage' },
      ],
    });
    expect(lines).toContain('Rollback of dep-1: its services and volumes are restored.');
    expect(lines).toContain('  < data                 revert       on m1: to the snapshot of dep-1');
    expect(lines).toContain('  ! cache                no_snapshots on m1: dir storage');
  });

  it('a preview names the machines that lack an image, and only those', () => {
    const id = `sha256:${'e688846aa19a'.padEnd(64, '0')}`;
    const line = (machine: string, action: DeployPlanView['images'][number]['action'], detail: string) => ({
      image: 'ployz/hello:latest',
      machine,
      image_id: id,
      action,
      size_bytes: 206_030_721,
      detail,
    });
    const lines = planLines({
      ...plan(true),
      images: [
        line('m1', 'present', 'on the coordinating machine'),
        line('m2', 'send', 'sent from m1 at the probe step'),
        line('m3', 'unknown', 'machine m3 did not say: timeout'),
      ],
    });
    const images = lines.slice(lines.indexOf('Images:'), lines.indexOf('Phases:'));
    expect(images).toEqual([
      'Images:',
      '  > ployz/hello:latest on m2: lacks it (e688846aa19a, 206.0 MB), sent from m1 at the probe step',
      '  ? ployz/hello:latest on m3: unknown, machine m3 did not say: timeout',
    ]);
    expect(planLines({ ...plan(true), images: [line('m1', 'present', 'x')] })).not.toContain('Images:');
  });

  it('renders image progress in a deploy and the push summary', () => {
    const base = { type: 'image' as const, image: 'ployz/hello:latest', machine: 'm2', image_id: null };
    expect(eventLine({ ...base, action: 'progress', bytes: 107_000_000, total_bytes: 214_000_000 })).toBe(
      '      image     ployz/hello:latest → m2: 107.0 MB of ~214.0 MB (50 %)',
    );
    expect(
      eventLine({
        ...base,
        action: 'loaded',
        bytes: 214_000_000,
        total_bytes: null,
        detail: '214.0 MB in 4.0 s',
      }),
    ).toBe('      image     ployz/hello:latest → m2: loaded: 214.0 MB in 4.0 s');
    expect(
      imagePushLines({
        image: 'ployz/hello:latest',
        image_id: `sha256:${'a'.repeat(64)}`,
        from: 'm1',
        machines: [
          {
            machine: 'm2',
            action: 'present',
            bytes: 0,
            seconds: 0.01,
            detail: 'already holds aaaaaaaaaaaa; nothing sent',
          },
          { machine: 'm3', action: 'sent', bytes: 214_000_000, seconds: 4, detail: 'loaded' },
        ],
      }),
    ).toEqual([
      'ployz/hello:latest (aaaaaaaaaaaa) from m1:',
      '  m2               already there, nothing sent (already holds aaaaaaaaaaaa; nothing sent)',
      '  m3               sent, 214.0 MB in 4.0 s',
    ]);
  });

  it('renders finished steps and instance events, hides step starts', () => {
    const at = '2026-01-01T00:00:00.000Z';
    expect(
      eventLine({ type: 'step', step: 7, name: 'final_commit', state: 'done', detail: 'dep-1-final', at }),
    ).toBe('[7/9] final_commit done: dep-1-final');
    expect(eventLine({ type: 'step', step: 7, name: 'final_commit', state: 'started', at })).toBeNull();
    expect(
      eventLine({
        type: 'instance',
        action: 'ready',
        service: 'web',
        slot: 0,
        machine: 'm1',
        instance: 'i',
        at,
        waited_ms: 1500,
        progress: '1/2',
      }),
    ).toBe('      ready     web slot 0 on m1 (i) after 1.5 s [1/2]');
  });

  it('every event the daemon can send is a valid wire event, and each has its rendering', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const samples: DeployEvent[] = [
      { type: 'step', step: 1, name: 'preview', state: 'done', at },
      { type: 'plan', plan: plan(true) },
      { type: 'deploy', deploy_id: 'dep-1', namespace: 'demo', rollback_of: null },
      { type: 'instance', action: 'starting', service: 'web', slot: 0, machine: 'm1', instance: 'i', at },
      { type: 'machine', machine: 'm2', available: false },
      { type: 'commit', commit_id: 'dep-1-final', kind: 'final', phase: null },
      { type: 'paused', step: 5, name: 'phases', pid: 1 },
      { type: 'volume', volume: 'data', machine: 'm1', action: 'snapshot', detail: 'zfs snapshot dep-1' },
      { type: 'warning', message: 'could not restore' },
      {
        type: 'image',
        machine: 'm2',
        image: 'ployz/hello:latest',
        image_id: null,
        action: 'sending',
        bytes: 0,
        total_bytes: 1000,
      },
      { type: 'result', noop: true, status: null, plan: plan(false) },
      { type: 'error', error: { code: 'DEPLOY_LOCK_HELD', message: 'held' }, state: null },
    ];
    for (const e of samples) expect(DeployEvent.safeParse(e).error).toBeUndefined();
    expect(new Set(samples.map((e) => e.type)).size).toBe(DeployEvent.options.length);
    expect(samples.map((e) => eventLine(e) !== null)).toEqual([
      true,
      false,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(
      eventLine({ type: 'volume', volume: 'data', machine: 'm1', action: 'writer_stopped', detail: 'x' }),
    ).toBe('      volume    data on m1: writer stopped, x');
    // A line of another shape is not a deploy event (the client refuses it, not the renderer).
    expect(DeployEvent.safeParse({ type: 'step', step: 10, name: 'x', state: 'done', at }).success).toBe(
      false,
    );
  });

  it("deploy show keeps a multi-line error (a failed start's log tail) indented under its field", () => {
    const at = '2026-12-03T23:00:00.000Z';
    const lines = detailLines(
      DeployDetailView.parse({
        status: {
          deploy_id: 'dep-0mx0000000000000b',
          namespace: 'demo',
          state: 'failed',
          manifest_hash: 'h1',
          phases: ['default'],
          commits: [],
          actor: 'test',
          step: 5,
          error: {
            code: 'DEPLOY_READINESS_FAILED',
            message: 'web-0 exited with code 4.\nIts last 1 log line(s):\n  | DATABASE_URL is not set',
          },
          started_at: at,
          updated_at: at,
        },
        phases: [],
        commits: [],
      }),
    );
    const at5 = lines.findIndex((l) => l.startsWith('error      DEPLOY_READINESS_FAILED: web-0 exited'));
    expect(at5).toBeGreaterThan(-1);
    expect(lines[at5]?.split('\n')).toEqual([
      'error      DEPLOY_READINESS_FAILED: web-0 exited with code 4.',
      '           Its last 1 log line(s):',
      '             | DATABASE_URL is not set',
    ]);
  });
});
