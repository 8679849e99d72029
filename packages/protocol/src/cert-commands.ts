/**
 * `ployzctl cert ls|show <host>`: the certificates of routes with `tls = "auto"` (ACME), as
 * ployzd's renewer keeps them (docs/adr/0015-acme.md).
 */
import { z } from 'zod';

export const CertificateState = z.enum(['pending', 'valid', 'failing']);

export const CertificateView = z.looseObject({
  hostname: z.string(),
  /** A committed route asks for it now (false: kept from a route that went). */
  wanted: z.boolean(),
  /** pending: never issued yet; valid: the last order succeeded; failing: it did not. */
  state: CertificateState,
  serial: z.string().nullable(),
  not_before: z.string().nullable(),
  not_after: z.string().nullable(),
  /** Two thirds of its lifetime. */
  renew_at: z.string().nullable(),
  issued_at: z.string().nullable(),
  directory_url: z.string().nullable(),
  failures: z.number().int(),
  last_error: z.object({ code: z.string(), message: z.string() }).nullable(),
  last_attempt_at: z.string().nullable(),
  next_attempt_at: z.string().nullable(),
  renewer: z.string().nullable(),
});
export type CertificateView = z.infer<typeof CertificateView>;

export const CertificateList = z.looseObject({
  /** The directory this machine's renewer orders from; null: no renewer here (`--acme-directory off`). */
  directory_url: z.string().nullable(),
  certificates: z.array(CertificateView),
});
export type CertificateList = z.infer<typeof CertificateList>;

export const CertificateShowQuery = z.object({ hostname: z.string().min(1).max(253) });

/** The renewal part of `status`: how many certificates in each state, and the failing ones. */
export const CertificatesStatus = z.looseObject({
  directory_url: z.string().nullable(),
  total: z.number().int(),
  valid: z.number().int(),
  pending: z.number().int(),
  failing: z.array(
    CertificateView.pick({
      hostname: true,
      failures: true,
      last_error: true,
      last_attempt_at: true,
      next_attempt_at: true,
      not_after: true,
    }),
  ),
  /** Why the records could not be read (the store away); the counts are then unknown, not zero. */
  error: z.string().nullable(),
});
export type CertificatesStatus = z.infer<typeof CertificatesStatus>;
