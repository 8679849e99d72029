/**
 * `machine invite` on a member: a fresh nonce is recorded in `invites_<installation>` (created,
 * state `issued`) before the token naming it is returned, so a token that was printed can always
 * be checked, and consumed once (join-accept.ts).
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '@ployz/store';
import { PloyzError, parseDuration } from '@ployz/types';
import type { InviteKey } from '../machine/invite-key.ts';
import { encodeInvite, type Invite } from './invite-token.ts';

/** Longest `--ttl` accepted: an invite is for a join about to happen. */
export const MAX_INVITE_TTL_MS = 7 * 24 * 3_600_000;

export function parseInviteTtl(text: string): number {
  const ms = parseDuration(text);
  if (ms === null || ms <= 0 || ms > MAX_INVITE_TTL_MS) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      `--ttl ${text}: give a duration above 0 and at most 7 days (168h), e.g. 30m, 1h, 24h`,
      { details: { ttl: text } },
    );
  }
  return ms;
}

export async function issueInvite(
  store: Store,
  key: InviteKey,
  facts: Omit<Invite, 'nonce' | 'expires_at'> & { ttlMs: number; now: Date },
): Promise<{ token: string; invite: Invite }> {
  const { ttlMs, now, ...rest } = facts;
  const invite: Invite = {
    ...rest,
    nonce: randomBytes(16).toString('base64url'),
    // Whole seconds: what the token carries.
    expires_at: new Date(Math.floor((now.getTime() + ttlMs) / 1000) * 1000),
  };
  const token = encodeInvite(invite, key.privateKey);
  await store.invites.create({
    nonce: invite.nonce,
    issuer: invite.issuer,
    region: invite.region,
    expires_at: invite.expires_at.toISOString(),
    state: 'issued',
    used_by: null,
    used_at: null,
    created_at: now.toISOString(),
  });
  return { token, invite };
}
