/**
 * The last machine records this machine's mesh applied, kept in `<state>/known-peers.json`. A
 * member whose ployz-nats is a leaf reaches the store only through wg0, so its mesh cannot wait
 * for the store: at start it peers with these (the join answer's members at first, then whatever
 * the mesh last applied), and follows the store once NATS answers. A machine restarted while the
 * storage machine is away still brings its tunnels up.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MachineRecord, PloyzError } from '@ployz/types';
import { z } from 'zod';
import { writeAtomic } from '../machine/atomic-write.ts';

function peersPath(stateDir: string): string {
  return join(stateDir, 'known-peers.json');
}

export async function saveKnownPeers(stateDir: string, peers: readonly MachineRecord[]): Promise<void> {
  await writeAtomic(peersPath(stateDir), `${JSON.stringify(peers, null, 2)}\n`, 0o600);
}

/** The saved records ([] when none were saved). */
export async function knownPeers(stateDir: string): Promise<MachineRecord[]> {
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
      `${peersPath(stateDir)} does not match its schema; remove it (the mesh then waits for the store)`,
    );
  }
  return parsed.data;
}
