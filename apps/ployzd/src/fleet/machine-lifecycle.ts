/**
 * `machine drain` and `machine rm` (issue 18 item 3): record changes by compare-and-set, each with
 * its `machine_upserted` routing event, so every machine's mesh and every edge follow at once.
 *
 * - drain: lifecycle `draining`. Placement gives it no new slot, so the next ordinary deploy of
 *   each namespace moves its replicated slots elsewhere; it stays peered while they run.
 * - rm: lifecycle `removed` (the record stays as a tombstone: history names it, its /24 is not
 *   handed out again while a stale route might point at it). Refused while a committed release
 *   has a slot on it or a volume lives on it, unless `force` — the answer then lists what was
 *   abandoned. A removed machine is no mesh peer anywhere (mesh/peers.ts) and its instances are
 *   unroutable (`machine_removed`), so no gateway sends it traffic. A storage machine (the
 *   standalone store's, or one of the three members) is refused even with `force`
 *   (MACHINE_IS_STORAGE): the store, or one of its replicas, would go with it.
 */
import type { Store } from '@ployz/store';
import { isPloyzError, type MachineRecord, PloyzError } from '@ployz/types';

export interface RemoveResult {
  machine: MachineRecord;
  changed: boolean;
  /** What `--force` left behind: `<ns>/<service>#<slot>` slots and `<ns>/<volume>` volumes. */
  abandoned: { slots: string[]; volumes: string[] };
}

async function setLifecycle(
  store: Store,
  id: string,
  lifecycle: 'draining' | 'removed',
  now: Date,
  guard: (record: MachineRecord) => Promise<void> = async () => {},
): Promise<{ machine: MachineRecord; changed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const current = await store.machines.get(id);
    if (current === null) {
      throw new PloyzError('NOT_FOUND', `no machine ${id} in this installation; see ployzctl machine ls`, {
        details: { machine: id },
      });
    }
    if (current.value.lifecycle === lifecycle) return { machine: current.value, changed: false };
    if (current.value.lifecycle === 'removed') {
      throw new PloyzError('INVALID_ARGUMENT', `machine ${id} is removed; it cannot be drained`, {
        details: { machine: id },
      });
    }
    await guard(current.value);
    const next: MachineRecord = { ...current.value, lifecycle, updated_at: now.toISOString() };
    try {
      await store.routing.appendAfterWrite(
        () => store.machines.update(next, current.revision),
        (written) => ({
          type: 'machine_upserted',
          machine: written.value,
          deploy_id: null,
          at: next.updated_at,
        }),
      );
      return { machine: next, changed: true };
    } catch (error) {
      if (!isPloyzError(error, 'STORE_CONFLICT') || attempt >= 5) throw error;
    }
  }
}

export function drainMachine(store: Store, id: string, now: Date) {
  return setLifecycle(store, id, 'draining', now);
}

/** What still lives on `id`: committed slots and volumes. */
export async function holdings(store: Store, id: string): Promise<RemoveResult['abandoned']> {
  const slots = (await store.releases.list()).flatMap(({ value: r }) =>
    r.slots.filter((s) => s.machine === id).map((s) => `${r.namespace}/${r.service}#${s.slot}`),
  );
  const volumes = (await store.volumes.list())
    .filter((v) => v.value.machine === id)
    .map((v) => `${v.value.namespace}/${v.value.name}`);
  return { slots: slots.sort(), volumes: volumes.sort() };
}

export async function removeMachine(
  store: Store,
  id: string,
  options: { force: boolean; self: string; now: Date; storage: readonly string[] },
): Promise<RemoveResult> {
  if (options.storage.includes(id)) {
    throw new PloyzError(
      'MACHINE_IS_STORAGE',
      `machine ${id} holds the store (storage machines: ${options.storage.join(', ')}); removing it would take ${options.storage.length === 1 ? 'the store' : 'one of its three replicas'} with it, so it is refused even with --force. Nothing was changed`,
      { details: { machine: id, storage: [...options.storage] } },
    );
  }
  if (id === options.self) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      `machine ${id} is the one this ployzctl talks to; run machine rm from another member`,
      { details: { machine: id } },
    );
  }
  let abandoned: RemoveResult['abandoned'] = { slots: [], volumes: [] };
  const result = await setLifecycle(store, id, 'removed', options.now, async () => {
    abandoned = await holdings(store, id);
    const held = abandoned.slots.length + abandoned.volumes.length;
    if (held > 0 && !options.force) {
      throw new PloyzError(
        'MACHINE_IN_USE',
        `machine ${id} still runs ${abandoned.slots.length} slot(s) and holds ${abandoned.volumes.length} volume(s); drain it (ployzctl machine drain ${id}) and deploy each namespace again, or pass --force to abandon them. Nothing was changed`,
        { details: { machine: id, ...abandoned } },
      );
    }
  });
  return { ...result, abandoned };
}
