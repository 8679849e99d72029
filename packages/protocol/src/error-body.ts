/**
 * An error as it crosses a process boundary (local API replies, RPC replies, deploy `error`
 * events): a registered code, a message saying what to do, optional details. The code is a plain
 * string on the wire, so an older reader still shows a code it does not know.
 */
import { z } from 'zod';

export const WireErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type WireErrorBody = z.infer<typeof WireErrorBody>;
