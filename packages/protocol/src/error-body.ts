/**
 * An error as it crosses a process boundary (local API replies, RPC replies, deploy `error`
 * events): a registered code, a message saying what to do, optional details. The code is a plain
 * string on the wire, so an older reader still shows a code it does not know.
 */
import { PloyzError } from '@ployz/types';
import { z } from 'zod';

export const WireErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type WireErrorBody = z.infer<typeof WireErrorBody>;

/** `service.mounts.0.volume` for an issue's path (`(root)` for the body itself). */
export function issuePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/**
 * API_BAD_REQUEST for a local API request that does not validate, naming the first field at
 * fault and why (`namespace: …`), so the CLI's message says what to change.
 */
export function requestInvalid(route: string, issues: readonly z.core.$ZodIssue[]): PloyzError {
  const first = issues[0];
  const at = first === undefined ? '' : `: ${issuePath(first.path)}: ${first.message}`;
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  return new PloyzError('API_BAD_REQUEST', `the ${route} request does not validate${at}${more}`, {
    details: { route, issues },
  });
}
