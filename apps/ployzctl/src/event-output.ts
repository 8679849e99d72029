/** How `ployzctl events` prints one routing event line of the `events` route. */
import type { EventView } from '@ployz/protocol';

function text(v: unknown): string | null {
  return typeof v === 'string' && v !== '' ? v : null;
}

/**
 * `seq  time  type  namespace/service/instance  deploy` — the subject falls back to the machine
 * (machine events, instance removals carry only their id), `-` when there is none.
 */
export function eventRow(e: EventView): string {
  const seq = typeof e.seq === 'number' ? String(e.seq) : '?';
  const path = [text(e.namespace), text(e.service), text(e.instance)].filter((x) => x !== null).join('/');
  const machine = text(e.machine);
  const subject = path !== '' ? path : machine !== null ? `machine ${machine}` : '-';
  const onMachine = path !== '' && machine !== null ? ` @${machine}` : '';
  return [
    seq.padStart(6),
    e.at ?? '-',
    e.type.padEnd(18),
    `${subject}${onMachine}`,
    text(e.deploy_id) ?? '-',
  ].join('  ');
}
