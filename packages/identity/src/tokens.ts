/**
 * The one escape of names used as NATS subject tokens and KV key parts (protocol's RPC subjects,
 * store's keys). A token keeps `[A-Za-z0-9_-]` as is; every other UTF-8 byte is written `=XX`
 * (upper-case hex), so `=` itself becomes `=3D`. Reversible; the result is always a valid NATS
 * subject token and KV key part. Stored keys depend on this exact form: never change it.
 */
import { PloyzError } from '@ployz/types';

const SAFE = /^[A-Za-z0-9_-]$/;
const ALL_SAFE = /^[A-Za-z0-9_-]+$/;

export function escapeToken(token: string): string {
  if (token.length === 0) {
    throw new PloyzError('INVALID_ARGUMENT', 'an empty name cannot be used as a key or subject token');
  }
  if (ALL_SAFE.test(token)) return token;
  let out = '';
  for (const ch of token) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) {
      out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

export function unescapeToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const ch = token[i];
    if (ch === '=') {
      bytes.push(Number.parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (ch !== undefined) {
      bytes.push(ch.charCodeAt(0));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
