import { type ManifestIssue, PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { errorLines, MAX_PROBLEM_LINES } from './error-output.ts';

const issue = (n: number): ManifestIssue => ({
  code: 'IMAGE_INVALID',
  path: `services[${n}].image`,
  message: 'the image is empty',
  file: 'deploy.toml',
  line: n + 3,
  column: 1,
});

describe('error output', () => {
  it('an error without issues is CODE: message', () => {
    expect(errorLines(new PloyzError('DEPLOY_LOCK_HELD', 'held by dep-1'))).toEqual([
      'DEPLOY_LOCK_HELD: held by dep-1',
    ]);
  });

  it('prints each problem as file:line:col code path: message, top level and unknown positions too', () => {
    const err = new PloyzError('MANIFEST_INVALID', 'first (and 1 more problem)', {
      details: { issues: [issue(0), { code: 'REQUIRED', path: '', message: 'namespace is required' }] },
    });
    expect(errorLines(err)).toEqual([
      'MANIFEST_INVALID: the manifest does not validate (2 problems)',
      '  deploy.toml:3:1 IMAGE_INVALID services[0].image: the image is empty',
      '  REQUIRED (top level): namespace is required',
    ]);
  });

  it(`caps the list at ${MAX_PROBLEM_LINES} and counts the rest; skips malformed wire issues`, () => {
    const issues = [...Array.from({ length: 25 }, (_, n) => issue(n)), { code: 1 }];
    const lines = errorLines(new PloyzError('MANIFEST_INVALID', 'x', { details: { issues } }));
    expect(lines[0]).toBe('MANIFEST_INVALID: the manifest does not validate (25 problems)');
    expect(lines).toHaveLength(1 + MAX_PROBLEM_LINES + 1);
    expect(lines[MAX_PROBLEM_LINES]).toBe(
      '  deploy.toml:22:1 IMAGE_INVALID services[19].image: the image is empty',
    );
    expect(lines.at(-1)).toBe('  (and 5 more)');
  });

  it('after a failed deploy, says what it left behind', () => {
    const failed = new PloyzError('DEPLOY_READINESS_FAILED', 'web-0 never answered', {
      details: { state: 'failed' },
    });
    expect(errorLines(failed)).toEqual([
      'DEPLOY_READINESS_FAILED: web-0 never answered',
      'Deploy failed before its first commit: nothing live changed, candidates were removed.',
    ]);
    const after = new PloyzError('DEPLOY_FAILED_AFTER_CHECKPOINT', 'cleanup failed', {
      details: { state: 'FailedAfterCheckpoint' },
    });
    expect(errorLines(after)[1]).toMatch(/^Deploy FailedAfterCheckpoint: committed facts are durable/);
  });
});
