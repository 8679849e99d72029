import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * sha256 over a domain tag and the canonical JSON of `value`. The tag (e.g. `ployz.container.v1`)
 * keeps hashes of different kinds of things apart and marks the format version.
 */
export function taggedHash(tag: string, value: unknown): string {
  return sha256Hex(`${tag}\n${canonicalJson(value)}`);
}
