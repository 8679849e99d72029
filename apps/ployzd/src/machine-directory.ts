/**
 * Machine records in `machines_<installation>` (DESIGN.md §4), validated with the shared
 * MachineRecord schema. A thin stand-in until the daemon opens @ployz/store's `store.machines`.
 */
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { MachineRecord, PloyzError } from '@ployz/types';
import type { MachineIdentity } from './machine-identity.ts';

export function machineRecordFor(identity: MachineIdentity, endpoints: string[], now: string): MachineRecord {
  return MachineRecord.parse({
    id: identity.machine_id,
    public_key: identity.public_key,
    overlay_ip: identity.overlay_ip,
    subnet: identity.subnet,
    endpoints,
    region: identity.region,
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: identity.created_at,
    updated_at: now,
  });
}

export class MachineDirectory {
  readonly #kv: KV;

  private constructor(kv: KV) {
    this.#kv = kv;
  }

  static async open(nc: NatsConnection, installation: string): Promise<MachineDirectory> {
    const kv = await new Kvm(nc).create(`machines_${installation}`, { history: 5 });
    return new MachineDirectory(kv);
  }

  async get(id: string): Promise<MachineRecord | null> {
    const entry = await this.#kv.get(id);
    if (entry?.operation !== 'PUT') return null;
    const parsed = MachineRecord.safeParse(entry.json());
    if (!parsed.success)
      throw new PloyzError('STORE_CORRUPT', `machine record ${id} does not match its schema`);
    return parsed.data;
  }

  /** Writes the record when absent; keeps the stored one (and its created_at) otherwise. */
  async ensure(record: MachineRecord): Promise<MachineRecord> {
    const existing = await this.get(record.id);
    if (existing && existing.public_key === record.public_key) return existing;
    await this.#kv.put(record.id, JSON.stringify(record));
    return record;
  }

  async list(): Promise<MachineRecord[]> {
    const out: MachineRecord[] = [];
    for await (const key of await this.#kv.keys()) {
      const r = await this.get(key);
      if (r) out.push(r);
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }
}
