import type { CertificateView } from '@ployz/protocol';
import { describe, expect, it } from 'vitest';
import { certDetailLines, certificateStatusLines, certLines } from './cert-output.ts';

const NOW = new Date('2026-01-21T00:00:00.000Z');
const valid: CertificateView = {
  hostname: 'shop.test',
  wanted: true,
  state: 'valid',
  serial: '0a1b2c3d4e5f60718293',
  not_before: '2026-01-01T00:00:00.000Z',
  not_after: '2026-01-31T00:00:00.000Z',
  renew_at: '2026-01-21T00:30:00.000Z',
  issued_at: '2026-01-01T00:00:05.000Z',
  directory_url: 'https://ca.test/dir',
  failures: 0,
  last_error: null,
  last_attempt_at: '2026-01-01T00:00:00.000Z',
  next_attempt_at: null,
  renewer: 'm1',
};
const failing: CertificateView = {
  ...valid,
  hostname: 'api.test',
  state: 'failing',
  failures: 3,
  last_error: { code: 'ACME_ORDER_FAILED', message: 'api.test: connect ECONNREFUSED 127.0.0.1:14000' },
  next_attempt_at: '2026-01-21T00:02:00.000Z',
};

describe('cert output', () => {
  it('cert ls: one row per hostname, a failing one with its retry and error', () => {
    expect(certLines({ directory_url: 'https://ca.test/dir', certificates: [failing, valid] }, NOW)).toEqual([
      'directory: https://ca.test/dir',
      'HOSTNAME   STATE    SERIAL            EXPIRES  RENEWS       FAILURES  LAST ERROR',
      'api.test   failing  0a1b2c3d4e5f6071  in 10d   retry in 2m  3         ACME_ORDER_FAILED: api.test: connect ECONNREFUSED 127.0.0.1:14000',
      'shop.test  valid    0a1b2c3d4e5f6071  in 10d   in 30m       0',
    ]);
    expect(certLines({ directory_url: null, certificates: [] }, NOW)).toEqual([
      'directory: none on this machine (--acme-directory off); another machine may renew',
      'no certificates: no route has tls = "auto"',
    ]);
  });

  it('cert show: every field, times with how far they are', () => {
    const lines = certDetailLines(failing, NOW);
    expect(lines).toContain('state         failing');
    expect(lines).toContain('not after     2026-01-31T00:00:00.000Z (in 10d)');
    expect(lines).toContain('next attempt  2026-01-21T00:02:00.000Z (in 2m)');
    expect(lines).toContain(
      'last error    ACME_ORDER_FAILED: api.test: connect ECONNREFUSED 127.0.0.1:14000',
    );
    expect(certDetailLines({ ...valid, wanted: false }, NOW)[0]).toBe(
      'hostname      shop.test (no route asks for it any more)',
    );
  });

  it('status: counts, each failing hostname and what still serves; nothing for an older daemon', () => {
    expect(
      certificateStatusLines(
        {
          directory_url: 'https://ca.test/dir',
          total: 2,
          valid: 1,
          pending: 0,
          failing: [failing],
          error: null,
        },
        NOW,
      ),
    ).toEqual([
      'certificates: 2 (1 valid, 0 pending, 1 failing)',
      '  renewal failing: api.test — 3 failure(s), ACME_ORDER_FAILED: api.test: connect ECONNREFUSED 127.0.0.1:14000; next attempt in 2m; the stored one serves until 2026-01-31T00:00:00.000Z',
    ]);
    expect(
      certificateStatusLines(
        { directory_url: null, total: 0, valid: 0, pending: 0, failing: [], error: null },
        NOW,
      ),
    ).toEqual(['certificates: none (no route has tls = "auto")']);
    expect(
      certificateStatusLines(
        {
          directory_url: null,
          total: 0,
          valid: 0,
          pending: 0,
          failing: [],
          error: 'the store did not answer',
        },
        NOW,
      ),
    ).toEqual(['certificates: renewal state unknown (the store did not answer)']);
    expect(certificateStatusLines(undefined, NOW)).toEqual([]);
  });
});
