/**
 * The invite token (`ployzctl machine invite`): `ployz1.<payload>.<signature>`, both parts
 * base64url, the payload compact JSON, the signature Ed25519 by the installation's invite key
 * over the text `ployz1.<payload>`. Pure: signing takes the key, verifying takes the key and the
 * clock. The joiner can only decode a token (it has no key); the issuer verifies it.
 */
import { type KeyObject, sign, verify } from 'node:crypto';
import { MachineId, Name, PloyzError } from '@ployz/types';
import { z } from 'zod';

const VERSION = 'ployz1';
const B64URL = /^[A-Za-z0-9_-]+$/;
/** Longest token accepted before any parsing (a real one is ~400 characters). */
const MAX_TOKEN = 4096;

/** The signed facts, with short keys on the wire. */
const Wire = z.strictObject({
  i: Name,
  m: MachineId,
  k: z.string().regex(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/),
  e: z.array(z.string().max(300)).max(8),
  j: z.string().max(300),
  r: z.string().min(1).max(63).nullable(),
  x: z.number().int().positive(),
  n: z.string().regex(/^[A-Za-z0-9_-]{22}$/),
});

export interface Invite {
  installation: string;
  issuer: string;
  /** The issuer's WireGuard public key and endpoints. */
  issuer_public_key: string;
  issuer_endpoints: string[];
  /** host:port of the issuer's join listener. */
  join: string;
  region: string | null;
  expires_at: Date;
  /** 16 random bytes, base64url: the key of the invite's record. */
  nonce: string;
}

function invalid(why: string): PloyzError {
  return new PloyzError(
    'INVITE_INVALID',
    `the invite token ${why}; nothing was changed. Ask a member for a new one: ployzctl machine invite`,
    { details: { reason: why } },
  );
}

export function encodeInvite(invite: Invite, key: KeyObject): string {
  const wire: z.infer<typeof Wire> = {
    i: invite.installation,
    m: invite.issuer,
    k: invite.issuer_public_key,
    e: invite.issuer_endpoints,
    j: invite.join,
    r: invite.region,
    x: Math.floor(invite.expires_at.getTime() / 1000),
    n: invite.nonce,
  };
  const payload = Buffer.from(JSON.stringify(Wire.parse(wire))).toString('base64url');
  const signed = `${VERSION}.${payload}`;
  return `${signed}.${sign(null, Buffer.from(signed), key).toString('base64url')}`;
}

/** Splits and parses a token without checking its signature (what a joiner can do). */
export function decodeInvite(token: string): { invite: Invite; signed: string; signature: Buffer } {
  const text = token.trim();
  if (text.length > MAX_TOKEN) throw invalid('is too long to be an invite');
  const parts = text.split('.');
  if (parts.length !== 3 || parts[0] !== VERSION) throw invalid(`is not a ${VERSION} invite`);
  const [, payload = '', signature = ''] = parts;
  // Canonical base64url only: a changed character is a changed token, even in padding bits.
  const canonical = (text: string) =>
    B64URL.test(text) && Buffer.from(text, 'base64url').toString('base64url') === text;
  if (!canonical(payload) || !canonical(signature)) throw invalid('is not base64url');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid('has a payload that is not JSON');
  }
  const wire = Wire.safeParse(json);
  if (!wire.success) throw invalid('has a payload of the wrong shape');
  const w = wire.data;
  return {
    invite: {
      installation: w.i,
      issuer: w.m,
      issuer_public_key: w.k,
      issuer_endpoints: w.e,
      join: w.j,
      region: w.r,
      expires_at: new Date(w.x * 1000),
      nonce: w.n,
    },
    signed: `${VERSION}.${payload}`,
    signature: Buffer.from(signature, 'base64url'),
  };
}

/**
 * The issuer's check: shape, Ed25519 signature under `key` (the installation's public key),
 * installation, then expiry against `now`. INVITE_INVALID or INVITE_EXPIRED; the nonce's
 * single use is the store's (join-accept.ts).
 */
export function verifyInvite(
  token: string,
  expected: { key: KeyObject; installation: string; now: Date },
): Invite {
  const { invite, signed, signature } = decodeInvite(token);
  if (signature.length !== 64 || !verify(null, Buffer.from(signed), expected.key, signature)) {
    throw invalid('does not carry a valid signature of this installation');
  }
  if (invite.installation !== expected.installation) {
    throw invalid(`is for installation ${invite.installation}, not ${expected.installation}`);
  }
  if (invite.expires_at.getTime() <= expected.now.getTime()) {
    throw new PloyzError(
      'INVITE_EXPIRED',
      `the invite expired at ${invite.expires_at.toISOString()}; nothing was changed. Ask a member for a new one: ployzctl machine invite`,
      { details: { expires_at: invite.expires_at.toISOString() } },
    );
  }
  return invite;
}
