import { describe, expect, it } from 'vitest';
import type { AcmeCertificateRecord, AcmeRenewalRecord } from './records.ts';
import { certificatesStatus, certificateViews } from './views.ts';

const cert = (hostname: string): AcmeCertificateRecord => ({
  hostname,
  cert_pem: '-----BEGIN CERTIFICATE-----',
  key: { v: 1, alg: 'x', nonce: 'n', ciphertext: 'c' } as unknown as AcmeCertificateRecord['key'],
  serial: `S-${hostname}`,
  not_before: '2026-01-01T00:00:00.000Z',
  not_after: '2026-01-31T00:00:00.000Z',
  issued_at: '2026-01-01T00:00:05.000Z',
  directory_url: 'https://ca.test/dir',
});
const renewal = (hostname: string, patch: Partial<AcmeRenewalRecord> = {}): AcmeRenewalRecord => ({
  hostname,
  state: 'valid',
  failures: 0,
  last_error: null,
  last_attempt_at: '2026-01-01T00:00:00.000Z',
  next_attempt_at: null,
  renewer: 'm1',
  ...patch,
});

describe('certificate views', () => {
  it('lists wanted hostnames and stored ones, sorted; a never-ordered one is pending', () => {
    const views = certificateViews(
      ['b.test', 'a.test'],
      [cert('a.test'), cert('gone.test')],
      [renewal('a.test'), renewal('gone.test')],
    );
    expect(views.map((v) => [v.hostname, v.wanted, v.state, v.serial])).toEqual([
      ['a.test', true, 'valid', 'S-a.test'],
      ['b.test', true, 'pending', null],
      ['gone.test', false, 'valid', 'S-gone.test'],
    ]);
    // Two thirds of 30 days after not-before.
    expect(views[0]?.renew_at).toBe('2026-01-21T00:00:00.000Z');
  });

  it("status counts what routes ask for and names the failing hostnames with the directory's error", () => {
    const error = { code: 'ACME_ORDER_FAILED', message: 'a.test: connect ECONNREFUSED' };
    const status = certificatesStatus(
      'https://ca.test/dir',
      certificateViews(
        ['a.test', 'b.test', 'c.test'],
        [cert('a.test'), cert('c.test'), cert('old.test')],
        [
          renewal('a.test', {
            state: 'failing',
            failures: 2,
            last_error: error,
            next_attempt_at: '2026-01-21T00:02:00.000Z',
          }),
          renewal('c.test'),
          renewal('old.test', { state: 'failing', failures: 9 }),
        ],
      ),
    );
    expect(status).toEqual({
      directory_url: 'https://ca.test/dir',
      total: 3,
      valid: 1,
      pending: 1,
      failing: [
        {
          hostname: 'a.test',
          failures: 2,
          last_error: error,
          last_attempt_at: '2026-01-01T00:00:00.000Z',
          next_attempt_at: '2026-01-21T00:02:00.000Z',
          not_after: '2026-01-31T00:00:00.000Z',
        },
      ],
      error: null,
    });
  });
});
