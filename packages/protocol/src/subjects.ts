/**
 * NATS subject scheme: `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`.
 *
 * A token keeps `[A-Za-z0-9_-]`; every other UTF-8 byte is written `=XX` (upper-case hex, so `=`
 * is `=3D`). Same escape as @ployz/store's KV keys (kept in both packages: they are siblings and
 * neither may import the other).
 */
import { PloyzError } from '@ployz/types';

const SAFE = /^[A-Za-z0-9_-]$/;
const ALL_SAFE = /^[A-Za-z0-9_-]+$/;

export function escapeToken(token: string): string {
  if (token.length === 0) {
    throw new PloyzError('INVALID_ARGUMENT', 'an empty name cannot be used as a subject token');
  }
  if (ALL_SAFE.test(token)) return token;
  let out = '';
  for (const ch of token) {
    if (SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const byte of Buffer.from(ch, 'utf8')) out += `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
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

export interface RpcScope {
  installation: string;
  authority: string;
}

/** `ployz.v1.<inst>.<auth>` */
export function subjectPrefix(scope: RpcScope): string {
  return `ployz.v1.${escapeToken(scope.installation)}.${escapeToken(scope.authority)}`;
}

/** `ployz.v1.<inst>.<auth>.rpc.node.<machine>`: the machine's command subjects live under it. */
export function machinePrefix(scope: RpcScope, machine: string): string {
  return `${subjectPrefix(scope)}.rpc.node.${escapeToken(machine)}`;
}

export function commandSubject(scope: RpcScope, machine: string, command: string): string {
  return `${machinePrefix(scope, machine)}.${escapeToken(command)}`;
}

/** Queue group of one machine's listeners (several daemons of one machine never both answer). */
export function machineQueue(scope: RpcScope, machine: string): string {
  return machinePrefix(scope, machine);
}
