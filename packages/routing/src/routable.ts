import type { InstanceRecord, MachineRecord, ReleaseRecord } from '@ployz/types';

/** Why an instance is not routable; `null` when it is. Stable strings, safe to show operators. */
export type UnroutableReason =
  | 'no_release'
  | 'release_mismatch'
  | 'not_running'
  | 'not_ready'
  | 'draining'
  | 'error'
  | 'no_ip'
  | 'revision_mismatch'
  | 'slot_mismatch'
  | 'machine_unknown'
  | 'machine_removed';

/**
 * The routable predicate (seed 003): ready, not draining, no error, has an overlay-reachable IP,
 * and matches the current slot, machine and revision of the committed release. Returns the first
 * reason the instance is excluded, or null when traffic may reach it.
 */
export function unroutableReason(
  instance: InstanceRecord,
  release: ReleaseRecord | undefined,
  machine: MachineRecord | undefined,
): UnroutableReason | null {
  if (release === undefined) return 'no_release';
  if (release.namespace !== instance.namespace || release.service !== instance.service)
    return 'release_mismatch';
  if (instance.state !== 'running') return 'not_running';
  if (!instance.ready) return 'not_ready';
  if (instance.draining) return 'draining';
  if (instance.error !== null) return 'error';
  if (instance.ip === null || instance.ip === '') return 'no_ip';
  if (release.revision !== instance.revision) return 'revision_mismatch';
  const slot = release.slots.find((s) => s.slot === instance.slot);
  if (slot === undefined || slot.instance !== instance.id || slot.machine !== instance.machine) {
    return 'slot_mismatch';
  }
  if (machine === undefined || machine.id !== instance.machine) return 'machine_unknown';
  if (machine.lifecycle === 'removed') return 'machine_removed';
  return null;
}

export function isRoutable(
  instance: InstanceRecord,
  release: ReleaseRecord | undefined,
  machine: MachineRecord | undefined,
): boolean {
  return unroutableReason(instance, release, machine) === null;
}
