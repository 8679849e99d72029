/**
 * The installation's invite signing key: Ed25519, PKCS#8 PEM at `<state>/installation/invite.key`
 * (0600). Created by `machine init` on the installation's first machine and kept when present;
 * a machine that joined has none (it cannot issue invites yet).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import { readIfPresent, writeAtomic } from './atomic-write.ts';

export function inviteKeyPath(stateDir: string): string {
  return join(stateDir, 'installation', 'invite.key');
}

export interface InviteKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export async function readInviteKey(stateDir: string): Promise<InviteKey | null> {
  const pem = await readIfPresent(inviteKeyPath(stateDir));
  if (pem === null) return null;
  try {
    const privateKey = createPrivateKey(pem);
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`a ${privateKey.asymmetricKeyType} key`);
    return { privateKey, publicKey: createPublicKey(privateKey) };
  } catch (error) {
    throw new PloyzError(
      'STORE_CORRUPT',
      `${inviteKeyPath(stateDir)} is not an Ed25519 private key; restore it from a backup`,
      { cause: error },
    );
  }
}

/** Keeps an existing key; otherwise writes a new one (0600, atomically). */
export async function ensureInviteKey(stateDir: string): Promise<{ key: InviteKey; created: boolean }> {
  const existing = await readInviteKey(stateDir);
  if (existing) return { key: existing, created: false };
  const { privateKey } = generateKeyPairSync('ed25519');
  const file = inviteKeyPath(stateDir);
  await mkdir(join(stateDir, 'installation'), { recursive: true, mode: 0o700 });
  await writeAtomic(file, String(privateKey.export({ type: 'pkcs8', format: 'pem' })), 0o600);
  return { key: { privateKey, publicKey: createPublicKey(privateKey) }, created: true };
}

/** A joined machine's copy of the installation's key (from its join answer), checked before it is kept. */
export async function writeInviteKey(stateDir: string, pem: string): Promise<void> {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new PloyzError('INTERNAL', `the invite key handed over is a ${privateKey.asymmetricKeyType} key`);
  }
  await mkdir(join(stateDir, 'installation'), { recursive: true, mode: 0o700 });
  await writeAtomic(inviteKeyPath(stateDir), pem, 0o600);
}
