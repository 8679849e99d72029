/**
 * NATS subject scheme: `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`.
 *
 * Tokens are escaped by @ployz/identity's `escapeToken` (the same escape as @ployz/store's KV keys):
 * `[A-Za-z0-9_-]` kept, every other UTF-8 byte written `=XX`.
 */
import { escapeToken, unescapeToken } from '@ployz/identity';

export { escapeToken, unescapeToken };

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
