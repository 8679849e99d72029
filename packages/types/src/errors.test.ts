import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode, isPloyzError, PloyzError } from './errors.ts';

describe('error registry', () => {
  it('round-trips an error through its wire body', () => {
    const err = new PloyzError('DEPLOY_LOCK_HELD', 'held by dep-1', { details: { holder: 'dep-1' } });
    const back = PloyzError.fromBody(JSON.parse(JSON.stringify(err.toJSON())));
    expect(back.code).toBe('DEPLOY_LOCK_HELD');
    expect(back.details).toEqual({ holder: 'dep-1' });
    expect(isPloyzError(back, 'DEPLOY_LOCK_HELD')).toBe(true);
    expect(isPloyzError(back, 'RPC_TIMEOUT')).toBe(false);
  });

  it('maps an unknown wire code to INTERNAL instead of trusting it', () => {
    expect(PloyzError.fromBody({ code: 'NOPE' as never, message: 'x' }).code).toBe('INTERNAL');
    expect(isErrorCode('NOPE')).toBe(false);
  });

  it('codes are upper snake case and every entry has a summary', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(entry.summary.length).toBeGreaterThan(5);
    }
  });
});
