import { describe, expect, it } from 'vitest';
import { ERROR_CODES, isErrorCode, isPloyzError, PloyzError, toErrorBody } from './errors.ts';

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

  it('toErrorBody keeps a PloyzError whole and gives anything else the fallback code', () => {
    const err = new PloyzError('STORE_CORRUPT', 'bad', { details: { key: 'k' } });
    expect(toErrorBody(err, 'RPC_REMOTE_ERROR')).toEqual({
      code: 'STORE_CORRUPT',
      message: 'bad',
      details: { key: 'k' },
    });
    expect(toErrorBody(new Error('boom'))).toEqual({ code: 'INTERNAL', message: 'boom' });
    expect(toErrorBody('nope', 'RPC_REMOTE_ERROR')).toEqual({ code: 'RPC_REMOTE_ERROR', message: 'nope' });
  });

  it('codes are upper snake case and every entry has a summary', () => {
    for (const [code, entry] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(entry.summary.length).toBeGreaterThan(5);
    }
  });
});
