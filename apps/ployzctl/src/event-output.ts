/** How `ployzctl events` prints one line of the `events` route (@ployz/protocol's `EventView`). */
import type { EventView } from '@ployz/protocol';

/** The fields a row shows; the stored event itself (`event`) is for `--json`. */
export type EventRowFields = Pick<
  EventView,
  'seq' | 'type' | 'at' | 'deploy_id' | 'namespace' | 'service' | 'instance' | 'machine'
>;

function text(v: string | null): string | null {
  return v !== null && v !== '' ? v : null;
}

/**
 * `seq  time  type  namespace/service/instance  deploy` — the subject falls back to the machine
 * (machine events, instance removals carry only their id), `-` when there is none.
 */
export function eventRow(e: EventRowFields): string {
  const path = [text(e.namespace), text(e.service), text(e.instance)].filter((x) => x !== null).join('/');
  const machine = text(e.machine);
  const subject = path !== '' ? path : machine !== null ? `machine ${machine}` : '-';
  const onMachine = path !== '' && machine !== null ? ` @${machine}` : '';
  return [
    String(e.seq).padStart(6),
    e.at,
    e.type.padEnd(18),
    `${subject}${onMachine}`,
    text(e.deploy_id) ?? '-',
  ].join('  ');
}
