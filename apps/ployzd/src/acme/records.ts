/**
 * What the ACME renewer keeps in NATS KV (docs/adr/0015-acme.md), one bucket each, per
 * installation: issued certificates (the private key sealed like a secret env value, ADR 0002),
 * HTTP-01 challenges in flight (what every gateway answers), each hostname's renewal state (what
 * `ployzctl cert ls` and `status` show) and the ACME account of each directory.
 */
import { SealedValue, Timestamp } from '@ployz/types';
import { z } from 'zod';

export const AcmeCertificateRecord = z.object({
  hostname: z.string(),
  /** Leaf first, then the issuer chain (PEM). */
  cert_pem: z.string(),
  /** The leaf's private key (PEM), sealed under `acmeKeyName(hostname)`. */
  key: SealedValue,
  serial: z.string(),
  not_before: Timestamp,
  not_after: Timestamp,
  issued_at: Timestamp,
  directory_url: z.string(),
});
export type AcmeCertificateRecord = z.infer<typeof AcmeCertificateRecord>;

export const AcmeChallengeRecord = z.object({
  token: z.string().regex(/^[A-Za-z0-9_-]{16,256}$/),
  key_authorization: z.string().max(1024),
  hostname: z.string(),
  created_at: Timestamp,
});
export type AcmeChallengeRecord = z.infer<typeof AcmeChallengeRecord>;

export const AcmeRenewalState = z.enum(['pending', 'valid', 'failing']);
export type AcmeRenewalState = z.infer<typeof AcmeRenewalState>;

export const AcmeRenewalRecord = z.object({
  hostname: z.string(),
  state: AcmeRenewalState,
  /** Failed attempts since the last success. */
  failures: z.number().int().nonnegative(),
  last_error: z.object({ code: z.string(), message: z.string() }).nullable(),
  last_attempt_at: Timestamp.nullable(),
  /** After a failure: no attempt before this (backoff). */
  next_attempt_at: Timestamp.nullable(),
  /** The machine whose renewer last worked on it. */
  renewer: z.string().nullable(),
});
export type AcmeRenewalRecord = z.infer<typeof AcmeRenewalRecord>;

export const AcmeAccountRecord = z.object({
  directory_url: z.string(),
  /** The account key (PEM), sealed under `acme.account`. */
  key: SealedValue,
  /** The account's URL at the directory once registered (a known account is never re-registered). */
  url: z.string().nullable(),
  created_at: Timestamp,
});
export type AcmeAccountRecord = z.infer<typeof AcmeAccountRecord>;

/** The name a certificate's key is sealed under: binds the box to its hostname. */
export function acmeKeyName(hostname: string): string {
  return `acme.key.${hostname}`;
}
export const ACME_ACCOUNT_KEY_NAME = 'acme.account';
