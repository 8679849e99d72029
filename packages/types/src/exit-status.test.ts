import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode, PloyzError } from './errors.ts';
import { EXIT_STATUS, exitStatus, exitStatusOf } from './exit-status.ts';

describe('exit status', () => {
  it('refuses user mistakes and conflicts with 2, fails the rest with 1', () => {
    expect(exitStatus('MANIFEST_INVALID')).toBe(2);
    expect(exitStatus('DEPLOY_LOCK_HELD')).toBe(2);
    expect(exitStatus('STORE_CONFLICT')).toBe(2);
    expect(exitStatus('ENGINE_NOT_READY')).toBe(1);
    expect(exitStatus('DAEMON_UNREACHABLE')).toBe(1);
    expect(exitStatus('INTERNAL')).toBe(1);
  });

  it('maps every registered code to an error status, never 0 or 3', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      expect([EXIT_STATUS.FAILED, EXIT_STATUS.REFUSED], code).toContain(exitStatus(code));
    }
  });

  it('takes a PloyzError by its code and anything else as a bug', () => {
    expect(exitStatusOf(new PloyzError('HOSTNAME_OWNED', 'x'))).toBe(2);
    expect(exitStatusOf(new TypeError('x'))).toBe(1);
    expect(exitStatusOf('boom')).toBe(1);
  });
});
