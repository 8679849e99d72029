/**
 * Whether this machine runs a store cluster member (ployz-nats-store, ADR 0020), and with whom:
 * `<state>/nats-store/member.json`, written by the `store_member_start` machine command and
 * removed by `store_member_remove`. The supervisor reads it at every pass: present, the member is
 * a desired component (adopted, created, or recreated with ployz-networking); absent, it is not.
 * The member's JetStream data is `<state>/nats-store/data`, never ployz-nats's directory.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';
import { z } from 'zod';
import { readIfPresent, writeAtomic } from '../machine/atomic-write.ts';

export const StoreMemberRecord = z.strictObject({
  /** The three members, this machine among them. */
  members: z
    .array(z.strictObject({ machine_id: z.string().min(1), overlay_ip: z.string().min(1) }))
    .length(3),
  /** The promotion run that started it (null: started by hand). */
  run: z.string().nullable(),
  started_at: z.iso.datetime(),
});
export type StoreMemberRecord = z.infer<typeof StoreMemberRecord>;

export function storeMemberDir(stateDir: string): string {
  return join(stateDir, 'nats-store');
}
export function storeMemberDataDir(stateDir: string): string {
  return join(storeMemberDir(stateDir), 'data');
}
function recordPath(stateDir: string): string {
  return join(storeMemberDir(stateDir), 'member.json');
}

/** A record file of this module, or null when absent; STORE_CORRUPT (with `fix`) when invalid. */
async function readRecordFile<S extends z.ZodType>(
  path: string,
  schema: S,
  fix: string,
): Promise<z.output<S> | null> {
  const text = await readIfPresent(path);
  if (text === null) return null;
  const parsed = schema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new PloyzError(
      'STORE_CORRUPT',
      `${path} does not validate (${parsed.error.issues[0]?.message ?? 'invalid'}); ${fix}`,
    );
  }
  return parsed.data;
}

/** The member record, or null when this machine runs no member. */
export function readStoreMember(stateDir: string): Promise<StoreMemberRecord | null> {
  return readRecordFile(
    recordPath(stateDir),
    StoreMemberRecord,
    'remove the member with its machine command and start it again',
  );
}

export async function writeStoreMember(stateDir: string, record: StoreMemberRecord): Promise<void> {
  await mkdir(storeMemberDataDir(stateDir), { recursive: true, mode: 0o700 });
  await writeAtomic(recordPath(stateDir), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** Forgets the member: its record and its data directory (the copy is discarded). */
export async function removeStoreMember(stateDir: string): Promise<void> {
  await rm(recordPath(stateDir), { force: true });
  await rm(storeMemberDataDir(stateDir), { recursive: true, force: true });
}

/**
 * Whether this machine's ployz-nats has switched over to the three store members (a promotion
 * past its commit point): `<state>/store-leaf.json`, written by `store_switch` (or by the machine
 * itself when its store's promotion record says `switched`). Present, ployz-nats runs without
 * JetStream as a leaf of the members' leaf port (ADR 0020), whatever `nats_hubs` the identity has.
 * Never removed by a member's removal: it is where this machine's store is.
 */
export const StoreLeafRecord = z.strictObject({
  members: z
    .array(z.strictObject({ machine_id: z.string().min(1), overlay_ip: z.string().min(1) }))
    .length(3),
  run: z.string().min(1),
  switched_at: z.iso.datetime(),
});
export type StoreLeafRecord = z.infer<typeof StoreLeafRecord>;

function leafPath(stateDir: string): string {
  return join(stateDir, 'store-leaf.json');
}

/** Whether this machine has switched over (its ployz-nats a leaf of the store members). */
export function storeLeafPresent(stateDir: string): boolean {
  return existsSync(leafPath(stateDir));
}

/** The switch-over record, or null while this machine's ployz-nats is on the standalone store. */
export function readStoreLeaf(stateDir: string): Promise<StoreLeafRecord | null> {
  return readRecordFile(
    leafPath(stateDir),
    StoreLeafRecord,
    'write it again with the store_switch machine command',
  );
}

export async function writeStoreLeaf(stateDir: string, record: StoreLeafRecord): Promise<void> {
  await writeAtomic(leafPath(stateDir), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}
