import type { DeployPlanView } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import { eventLine, planLines, previewExitCode } from './deploy-output.ts';

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
  phases: [{ id: 'default', index: 0, commit_policy: 'end_of_deploy', does: 'start 1 candidate(s)' }],
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

  it('renders finished steps and instance events, hides step starts', () => {
    expect(
      eventLine({ type: 'step', step: 7, name: 'final_commit', state: 'done', detail: 'dep-1-final' }),
    ).toBe('[7/9] final_commit done: dep-1-final');
    expect(eventLine({ type: 'step', step: 7, name: 'final_commit', state: 'started' })).toBeNull();
    expect(
      eventLine({ type: 'instance', action: 'ready', service: 'web', slot: 0, machine: 'm1', instance: 'i' }),
    ).toContain('ready');
  });
});
