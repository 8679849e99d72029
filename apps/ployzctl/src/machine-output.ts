import type { MachineInitResult } from '@ployz/protocol';
import { EXIT_STATUS, exitStatus, isErrorCode } from '@ployz/types';

/** What `machine init` and `machine join` print once the identity exists: address, storage, components. */
export function machineUpLines(result: MachineInitResult): string[] {
  const m = result.machine;
  const lines = [`  overlay ${m.overlay_ip}  subnet ${m.subnet}`];
  if (typeof m.storage === 'string') lines.push(`  storage ${m.storage}`);
  for (const c of result.components)
    lines.push(`  ${c.component.padEnd(11)} ${c.state}${c.detail ? `  ${c.detail}` : ''}`);
  if (result.reconcile?.error)
    lines.push(`  data plane: ${result.reconcile.error.code}: ${result.reconcile.error.message}`);
  return lines;
}

/** The machine is initialised either way; a data plane that did not come up is a failure to see. */
export function machineUpExitCode(result: MachineInitResult): number | undefined {
  const failure = result.reconcile?.error;
  if (!failure) return undefined;
  return isErrorCode(failure.code) ? exitStatus(failure.code) : EXIT_STATUS.FAILED;
}
