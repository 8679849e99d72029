import { generateKeyPairSync } from 'node:crypto';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { decodeInvite, encodeInvite, type Invite, verifyInvite } from './invite-token.ts';

const installation = generateKeyPairSync('ed25519');
const other = generateKeyPairSync('ed25519');
const NOW = new Date('2026-12-02T10:00:00.000Z');
const invite: Invite = {
  installation: 'prod',
  issuer: 'm1',
  issuer_public_key: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  issuer_endpoints: ['192.0.2.1:51820'],
  join: '192.0.2.1:51821',
  region: 'eu',
  expires_at: new Date('2026-12-02T11:00:00.000Z'),
  nonce: 'AAECAwQFBgcICQoLDA0ODw',
};
const expected = { key: installation.publicKey, installation: 'prod', now: NOW };

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    return isPloyzError(error) ? error.code : `not a PloyzError: ${String(error)}`;
  }
  return 'accepted';
}

describe('invite token', () => {
  const token = encodeInvite(invite, installation.privateKey);

  it('is versioned, compact base64url, and verifies back to the same facts', () => {
    expect(token).toMatch(/^ployz1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/);
    expect(token.length).toBeLessThan(400);
    expect(verifyInvite(token, expected)).toEqual(invite);
    expect(decodeInvite(token).invite).toEqual(invite);
  });

  it('refuses a token with any byte of its payload or signature flipped (INVITE_INVALID)', () => {
    const [version, payload = '', signature = ''] = token.split('.');
    const parts = {
      payload: Buffer.from(payload, 'base64url'),
      signature: Buffer.from(signature, 'base64url'),
    };
    let checked = 0;
    for (const which of ['payload', 'signature'] as const) {
      for (let i = 0; i < parts[which].length; i++) {
        const bytes = Buffer.from(parts[which]);
        bytes[i] = (bytes[i] ?? 0) ^ 0x01;
        const p = which === 'payload' ? bytes : parts.payload;
        const s = which === 'signature' ? bytes : parts.signature;
        const forged = `${version}.${p.toString('base64url')}.${s.toString('base64url')}`;
        expect(
          code(() => verifyInvite(forged, expected)),
          `${which} byte ${i}`,
        ).toBe('INVITE_INVALID');
        checked++;
      }
    }
    expect(checked).toBe(parts.payload.length + 64);
  });

  it('refuses any character of the text changed, padding bits included', () => {
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.';
    for (let i = 0; i < token.length; i++) {
      const c = token[i] ?? '';
      const replacement = alphabet[(alphabet.indexOf(c) + 1) % alphabet.length] ?? 'A';
      const forged = `${token.slice(0, i)}${replacement}${token.slice(i + 1)}`;
      expect(
        code(() => verifyInvite(forged, expected)),
        `character ${i}`,
      ).toBe('INVITE_INVALID');
    }
  });

  it('refuses what is not a token at all', () => {
    for (const text of [
      '',
      'ployz1',
      'ployz1..',
      'ployz2.e30.AA',
      'ployz1.e30.AA',
      'x'.repeat(5000),
      `ployz1.${'!'.repeat(10)}.AA`,
    ]) {
      expect(
        code(() => decodeInvite(text)),
        text.slice(0, 20),
      ).toBe('INVITE_INVALID');
    }
  });

  it('is INVITE_EXPIRED at and after its expiry, against the clock given', () => {
    expect(code(() => verifyInvite(token, { ...expected, now: new Date('2026-12-02T10:59:59.000Z') }))).toBe(
      'accepted',
    );
    expect(code(() => verifyInvite(token, { ...expected, now: invite.expires_at }))).toBe('INVITE_EXPIRED');
    expect(code(() => verifyInvite(token, { ...expected, now: new Date('2027-01-01T00:00:00.000Z') }))).toBe(
      'INVITE_EXPIRED',
    );
  });

  it('is INVITE_INVALID for another installation: its key, or its name under this key', () => {
    const foreign = encodeInvite(invite, other.privateKey);
    expect(code(() => verifyInvite(foreign, expected))).toBe('INVITE_INVALID');
    const renamed = encodeInvite({ ...invite, installation: 'staging' }, installation.privateKey);
    expect(code(() => verifyInvite(renamed, expected))).toBe('INVITE_INVALID');
    // A forged token that is also expired is refused as forged: the signature is checked first.
    const expiredForeign = encodeInvite(
      { ...invite, expires_at: new Date('2020-01-01T00:00:00Z') },
      other.privateKey,
    );
    expect(code(() => verifyInvite(expiredForeign, expected))).toBe('INVITE_INVALID');
  });
});
