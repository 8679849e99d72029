/**
 * The installation secrets a joining machine needs to be a full member, handed over in the join
 * answer sealed to the joiner's WireGuard key (the answer travels over plain HTTP on the LAN):
 *
 * - the NATS leaf secret (machine/leaf-secret.ts): its ployz-nats joins the storage machine's;
 * - the installation key (ADR 0002): it unseals the env values of the services it runs;
 * - the invite key: it can issue invites itself.
 *
 * Sealing: X25519 between a fresh ephemeral key and the joiner's WireGuard public key (a
 * WireGuard key pair is an X25519 key pair), HKDF-SHA256 over the shared secret with both public
 * keys as salt, AES-256-GCM with the joiner's machine id as associated data. Only the holder of
 * the WireGuard private key — which never leaves the joiner — opens it.
 */
import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import type { SealedJoinSecrets } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { z } from 'zod';
import { installationKeyPath, loadInstallationKey } from '../deploy/plugin.ts';
import { writeAtomic } from '../machine/atomic-write.ts';
import { readInviteKey, writeInviteKey } from '../machine/invite-key.ts';
import { ensureLeafSecret, writeLeafSecret } from '../machine/leaf-secret.ts';

export const JoinSecrets = z.strictObject({
  leaf_secret: z.string().min(32),
  installation_key: z.string().min(1),
  invite_key_pem: z.string().min(1),
});
export type JoinSecrets = z.infer<typeof JoinSecrets>;

const INFO = 'ployz.join-secrets.v1';

function b64url(buffer: Buffer): string {
  return buffer.toString('base64url');
}

function x25519Public(publicKeyBase64: string): KeyObject {
  return createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: b64url(Buffer.from(publicKeyBase64, 'base64')) },
    format: 'jwk',
  });
}

function x25519Private(privateKeyBase64: string, publicKeyBase64: string): KeyObject {
  return createPrivateKey({
    key: {
      kty: 'OKP',
      crv: 'X25519',
      d: b64url(Buffer.from(privateKeyBase64, 'base64')),
      x: b64url(Buffer.from(publicKeyBase64, 'base64')),
    },
    format: 'jwk',
  });
}

function rawPublic(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(String(jwk.x), 'base64url');
}

function boxKey(shared: Buffer, ephemeral: Buffer, recipient: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), INFO, 32));
}

/** Seals `secrets` for the machine whose WireGuard public key is `recipientPublicKey`. */
export function sealJoinSecrets(
  secrets: JoinSecrets,
  recipientPublicKey: string,
  machineId: string,
): SealedJoinSecrets {
  const recipient = x25519Public(recipientPublicKey);
  const ephemeral = generateKeyPairSync('x25519');
  const epk = rawPublic(ephemeral.publicKey);
  const key = boxKey(
    diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }),
    epk,
    rawPublic(recipient),
  );
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(machineId));
  const box = Buffer.concat([
    cipher.update(JSON.stringify(secrets), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]);
  return { epk: b64url(epk), iv: b64url(iv), box: b64url(box) };
}

/** Opens what `sealJoinSecrets` sealed for this machine (a box that does not open is INTERNAL). */
export function openJoinSecrets(
  sealed: SealedJoinSecrets,
  keys: { privateKey: string; publicKey: string },
  machineId: string,
): JoinSecrets {
  try {
    const own = x25519Private(keys.privateKey, keys.publicKey);
    const epk = Buffer.from(sealed.epk, 'base64url');
    const ephemeral = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64url(epk) }, format: 'jwk' });
    const key = boxKey(
      diffieHellman({ privateKey: own, publicKey: ephemeral }),
      epk,
      Buffer.from(keys.publicKey, 'base64'),
    );
    const box = Buffer.from(sealed.box, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
    decipher.setAAD(Buffer.from(machineId));
    decipher.setAuthTag(box.subarray(box.length - 16));
    const text = Buffer.concat([
      decipher.update(box.subarray(0, box.length - 16)),
      decipher.final(),
    ]).toString('utf8');
    return JoinSecrets.parse(JSON.parse(text));
  } catch (error) {
    throw new PloyzError(
      'INTERNAL',
      "the issuer's answer carries installation secrets this machine cannot open; nothing was written here. Ask for a new invite and join again",
      { cause: error },
    );
  }
}

/** The issuer's side: what it hands over (the installation key is created if no deploy made it yet). */
export async function collectJoinSecrets(stateDir: string): Promise<JoinSecrets> {
  const invite = await readInviteKey(stateDir);
  if (invite === null) {
    throw new PloyzError('INTERNAL', 'this machine answers joins but holds no invite key');
  }
  return {
    leaf_secret: await ensureLeafSecret(stateDir),
    installation_key: (await loadInstallationKey(stateDir)).toText(),
    invite_key_pem: String(invite.privateKey.export({ type: 'pkcs8', format: 'pem' })),
  };
}

/** The joiner's side: writes each secret where its owner reads it (0600, atomically). */
export async function installJoinSecrets(stateDir: string, secrets: JoinSecrets): Promise<void> {
  await writeLeafSecret(stateDir, secrets.leaf_secret);
  await writeInviteKey(stateDir, secrets.invite_key_pem);
  await writeAtomic(installationKeyPath(stateDir), `${secrets.installation_key}\n`, 0o600);
}
