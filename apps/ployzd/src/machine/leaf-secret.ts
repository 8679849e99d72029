/**
 * The installation's NATS leaf secret: the password every member's ployz-nats presents to the
 * storage machine's leafnode port (docs/adr/0013-nats-leafnodes.md). 32 random bytes, base64url,
 * at `<state>/installation/leaf.secret` (0600). The first machine creates it; a joiner receives it
 * sealed in its join answer (fleet/join-secrets.ts).
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import { readIfPresent, writeAtomic } from './atomic-write.ts';

export function leafSecretPath(stateDir: string): string {
  return join(stateDir, 'installation', 'leaf.secret');
}

const SHAPE = /^[A-Za-z0-9_-]{43}$/;

export async function readLeafSecret(stateDir: string): Promise<string | null> {
  const text = (await readIfPresent(leafSecretPath(stateDir)))?.trim();
  if (text === undefined) return null;
  if (!SHAPE.test(text)) {
    throw new PloyzError(
      'STORE_CORRUPT',
      `${leafSecretPath(stateDir)} is not a leaf secret (43 base64url characters); restore it from another member's state directory`,
    );
  }
  return text;
}

export async function writeLeafSecret(stateDir: string, secret: string): Promise<void> {
  if (!SHAPE.test(secret)) throw new PloyzError('INTERNAL', 'a leaf secret is 43 base64url characters');
  await mkdir(join(stateDir, 'installation'), { recursive: true, mode: 0o700 });
  await writeAtomic(leafSecretPath(stateDir), `${secret}\n`, 0o600);
}

/** Keeps an existing secret; otherwise writes a new one. */
export async function ensureLeafSecret(stateDir: string): Promise<string> {
  const existing = await readLeafSecret(stateDir);
  if (existing !== null) return existing;
  const secret = randomBytes(32).toString('base64url');
  await writeLeafSecret(stateDir, secret);
  return secret;
}
