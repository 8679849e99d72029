/**
 * Canonical JSON (sorted keys, no whitespace) and the config hash taken over it. A local stand-in
 * for @ployz/identity's configHash with the same shape: sha256 hex of the canonical form.
 */
import { createHash } from 'node:crypto';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json | undefined };

export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as Json)}`).join(',')}}`;
}

export function configHash(value: Json): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}
