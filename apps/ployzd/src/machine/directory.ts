/**
 * Machine records of this installation through @ployz/store (`machines_<installation>`, CAS,
 * zod-validated). Writing a new record also appends the `machine_upserted` routing event, so the
 * gateway and DNS projections learn about the machine (seed 003: write, then event).
 */
import type { Store } from '@ployz/store';
import { isPloyzError, MachineRecord } from '@ployz/types';
import { parseStorageSpec } from '../storage/storage-spec.ts';
import type { MachineIdentity } from './identity.ts';

function storageOfText(text: string): { driver: 'zfs' | 'btrfs' | 'dir'; root: string } {
  const spec = parseStorageSpec(text);
  return { driver: spec.kind, root: spec.root };
}

export function machineRecordFor(identity: MachineIdentity, endpoints: string[], now: string): MachineRecord {
  const storage = identity.storage === undefined ? undefined : storageOfText(identity.storage);
  return MachineRecord.parse({
    id: identity.machine_id,
    public_key: identity.public_key,
    overlay_ip: identity.overlay_ip,
    subnet: identity.subnet,
    endpoints,
    region: identity.region,
    region_role: 'home_data',
    lifecycle: 'active',
    ...(storage === undefined ? {} : { storage }),
    created_at: identity.created_at,
    updated_at: now,
  });
}

export class MachineDirectory {
  readonly store: Store;

  /** On the daemon's Store (it never closes it). */
  constructor(store: Store) {
    this.store = store;
  }

  async get(id: string): Promise<MachineRecord | null> {
    return (await this.store.machines.get(id))?.value ?? null;
  }

  /**
   * Creates the record when absent (plus its routing event). A stored one is kept as it is,
   * except its endpoints: when they differ from `record`'s they are replaced by compare-and-set
   * on the revision read (a lost race re-reads and retries), with a `machine_upserted` event.
   */
  async ensure(
    record: MachineRecord,
  ): Promise<{ record: MachineRecord; created: boolean; updated: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const existing = await this.store.machines.get(record.id);
      try {
        if (existing === null) {
          await this.#write(() => this.store.machines.create(record));
          return { record, created: true, updated: false };
        }
        if (sameEndpoints(existing.value.endpoints, record.endpoints)) {
          return { record: existing.value, created: false, updated: false };
        }
        const next = { ...existing.value, endpoints: record.endpoints, updated_at: record.updated_at };
        await this.#write(() => this.store.machines.update(next, existing.revision));
        return { record: next, created: false, updated: true };
      } catch (error) {
        if (!isPloyzError(error, 'STORE_CONFLICT') || attempt >= 5) throw error;
      }
    }
  }

  async #write(write: () => Promise<{ value: MachineRecord }>): Promise<void> {
    await this.store.routing.appendAfterWrite(write, (written) => ({
      type: 'machine_upserted',
      machine: written.value,
      deploy_id: null,
      at: written.value.updated_at,
    }));
  }

  async list(): Promise<MachineRecord[]> {
    return (await this.store.machines.list()).map((v) => v.value).sort((a, b) => a.id.localeCompare(b.id));
  }
}

function sameEndpoints(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((e, i) => e === b[i]);
}
