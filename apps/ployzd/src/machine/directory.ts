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

  /** Creates the record when absent (plus its routing event); keeps a stored one as it is. */
  async ensure(record: MachineRecord): Promise<{ record: MachineRecord; created: boolean }> {
    const existing = await this.get(record.id);
    if (existing) return { record: existing, created: false };
    try {
      await this.store.routing.appendAfterWrite(
        () => this.store.machines.create(record),
        (written) => ({
          type: 'machine_upserted',
          machine: written.value,
          deploy_id: null,
          at: record.updated_at,
        }),
      );
      return { record, created: true };
    } catch (error) {
      if (isPloyzError(error, 'STORE_CONFLICT')) {
        const raced = await this.get(record.id);
        if (raced) return { record: raced, created: false };
      }
      throw error;
    }
  }

  async list(): Promise<MachineRecord[]> {
    return (await this.store.machines.list()).map((v) => v.value).sort((a, b) => a.id.localeCompare(b.id));
  }
}
