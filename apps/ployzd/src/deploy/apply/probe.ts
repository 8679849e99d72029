/**
 * Step 3: ask every active machine for live capacity. No responder or a timeout is
 * "unavailable" (an event), never an error: placement then leaves that machine out.
 */

import type { MachineRecord } from '@ployz/types';
import { toErrorBody } from '@ployz/types';
import type { DeployRun } from './run.ts';

export async function probeMachines(run: DeployRun, machines: readonly MachineRecord[]): Promise<void> {
  await Promise.all(
    machines
      .filter((m) => m.lifecycle === 'active')
      .map(async (m) => {
        try {
          run.capacity.set(m.id, await run.engine.agent.capacity(m.id));
          run.emit({ type: 'machine', machine: m.id, available: true });
        } catch (err) {
          run.unavailable.add(m.id);
          run.emit({ type: 'machine', machine: m.id, available: false, detail: toErrorBody(err).message });
        }
      }),
  );
}
