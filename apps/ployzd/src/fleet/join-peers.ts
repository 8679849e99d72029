/**
 * The members a join answer named, kept in `<state>/join-peers.json` until this machine's own
 * store holds them (written at the first NATS connection after the join, then removed), so a
 * ployzd stopped between the join and that write still peers with them at its next start. Until
 * NATS spans machines (issue 18 item 4) this is how a joined machine's mesh learns the members.
 */
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MachineRecord, PloyzError } from '@ployz/types';
import { z } from 'zod';
import { writeAtomic } from '../machine/atomic-write.ts';

function peersPath(stateDir: string): string {
  return join(stateDir, 'join-peers.json');
}

export async function saveJoinPeers(stateDir: string, peers: readonly MachineRecord[]): Promise<void> {
  await writeAtomic(peersPath(stateDir), `${JSON.stringify(peers, null, 2)}\n`, 0o600);
}

/** The saved members ([] when none are pending). */
export async function pendingJoinPeers(stateDir: string): Promise<MachineRecord[]> {
  let text: string;
  try {
    text = await readFile(peersPath(stateDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = z.array(MachineRecord).safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new PloyzError(
      'STORE_CORRUPT',
      `${peersPath(stateDir)} does not match its schema; remove it and join again`,
    );
  }
  return parsed.data;
}

export async function clearJoinPeers(stateDir: string): Promise<void> {
  await rm(peersPath(stateDir), { force: true });
}
