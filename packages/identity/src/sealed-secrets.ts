/**
 * Sealed env values (docs/adr/0002-sealed-secrets.md). Every env value of a service spec is
 * stored as { kid, mac, box }:
 *   mac = HMAC-SHA256(macKey, "ployz.env.v1\0" + name + "\0" + value)  — deterministic, so specs
 *         compare and revision ids stay stable across re-sealing, without plaintext;
 *   box = AES-256-GCM(encKey, iv, value, aad = name)                    — random iv, decryptable
 *         by daemons holding the installation key.
 * Both keys are derived from one 32-byte installation key with HKDF-SHA256; `kid` names it.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from 'node:crypto';
import { PloyzError, type SealedValue, type ServiceSpec, type StoredServiceSpec } from '@ployz/types';
import { sha256Hex } from './digest.ts';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function derive(ikm: Uint8Array, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, 'ployz.installation-key', info, KEY_BYTES));
}

/**
 * The installation key held by the daemons. Key material lives in private fields, so it does not
 * show up in JSON, logs or `util.inspect`.
 */
export class InstallationKey {
  readonly #enc: Buffer;
  readonly #mac: Buffer;
  readonly #raw: Buffer;
  /** 16 hex characters naming this key; stored next to each sealed value. */
  readonly kid: string;

  private constructor(raw: Buffer) {
    this.#raw = raw;
    this.#enc = derive(raw, 'ployz.seal.v1.enc');
    this.#mac = derive(raw, 'ployz.seal.v1.mac');
    this.kid = sha256Hex(Buffer.concat([Buffer.from('ployz.kid.v1\0'), this.#mac])).slice(0, 16);
  }

  static generate(): InstallationKey {
    return new InstallationKey(randomBytes(KEY_BYTES));
  }

  /** From the text form written by `toText()` (base64url of 32 bytes). */
  static fromText(text: string): InstallationKey {
    const trimmed = text.trim();
    const raw = Buffer.from(trimmed, 'base64url');
    if (raw.length !== KEY_BYTES || raw.toString('base64url') !== trimmed) {
      throw new PloyzError(
        'SECRET_KEY_INVALID',
        'the installation key must be 32 bytes written as base64url (43 characters)',
      );
    }
    return new InstallationKey(raw);
  }

  static fromBytes(bytes: Uint8Array): InstallationKey {
    if (bytes.length !== KEY_BYTES) {
      throw new PloyzError(
        'SECRET_KEY_INVALID',
        `the installation key must be ${KEY_BYTES} bytes, got ${bytes.length}`,
      );
    }
    return new InstallationKey(Buffer.from(bytes));
  }

  toText(): string {
    return this.#raw.toString('base64url');
  }

  toJSON(): { kid: string } {
    return { kid: this.kid };
  }

  /** Keyed digest of an env value under its name: base64url, 43 characters. */
  macEnv(name: string, value: string): string {
    return createHmac('sha256', this.#mac).update(`ployz.env.v1\0${name}\0${value}`).digest('base64url');
  }

  /** Keyed digest for any other labelled value (e.g. the manifest hash). */
  macTagged(tag: string, text: string): string {
    return createHmac('sha256', this.#mac).update(`${tag}\0${text}`).digest('hex');
  }

  sealEnv(name: string, value: string): SealedValue {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#enc, iv);
    cipher.setAAD(Buffer.from(name));
    const body = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const box = Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
    return { kid: this.kid, mac: this.macEnv(name, value), box };
  }

  openEnv(name: string, sealed: SealedValue): string {
    if (sealed.kid !== this.kid) {
      throw new PloyzError(
        'SECRET_KEY_MISMATCH',
        `env ${name} was sealed under installation key ${sealed.kid}, this daemon holds ${this.kid}; ` +
          'copy the installation key from a machine of this installation',
        { details: { name, sealed_kid: sealed.kid, kid: this.kid } },
      );
    }
    const bytes = Buffer.from(sealed.box, 'base64url');
    let plain: string;
    try {
      if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('sealed box too short');
      const decipher = createDecipheriv('aes-256-gcm', this.#enc, bytes.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(name));
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
      plain = Buffer.concat([
        decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
        decipher.final(),
      ]).toString('utf8');
    } catch (cause) {
      throw new PloyzError('STORE_CORRUPT', `sealed env ${name} does not decrypt (tampered or truncated)`, {
        cause,
        details: { name },
      });
    }
    const expected = Buffer.from(this.macEnv(name, plain));
    const actual = Buffer.from(sealed.mac);
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
      throw new PloyzError('STORE_CORRUPT', `sealed env ${name} does not match its digest`, {
        details: { name },
      });
    }
    return plain;
  }
}

/** The spec with every env value sealed. Safe to store in NATS. */
export function sealSpec(spec: ServiceSpec, key: InstallationKey): StoredServiceSpec {
  const env = Object.fromEntries(Object.entries(spec.env).map(([k, v]) => [k, key.sealEnv(k, v)]));
  return { ...spec, env };
}

/** The plaintext spec, for the daemon that starts containers. */
export function unsealSpec(stored: StoredServiceSpec, key: InstallationKey): ServiceSpec {
  const env = Object.fromEntries(Object.entries(stored.env).map(([k, v]) => [k, key.openEnv(k, v)]));
  return { ...stored, env };
}

/** A stored spec with env values replaced by their keyed digests: what revision ids hash. */
export function redactSpec(
  stored: StoredServiceSpec,
): Omit<StoredServiceSpec, 'env'> & { env: Record<string, string> } {
  return { ...stored, env: Object.fromEntries(Object.entries(stored.env).map(([k, v]) => [k, v.mac])) };
}
