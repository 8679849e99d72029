/**
 * The one way ployzd replaces a state file: written beside it under a name no concurrent writer
 * shares (a credentials rotation and a reconcile pass may write the same seed at once), mode and
 * owner set, then renamed over it. Readers see the old file or the new one, never half of one.
 * Read back with `readIfPresent`: a state file that is not there yet is null, not an error.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, rename, rm, writeFile } from 'node:fs/promises';

export async function writeAtomic(path: string, text: string, mode: number, uid?: number): Promise<void> {
  const tmp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode });
    await chmod(tmp, mode);
    if (uid !== undefined) await chown(tmp, uid, uid);
    await rename(tmp, path);
  } catch (error) {
    await rm(tmp, { force: true });
    throw error;
  }
}

/** The text of the state file at `path`, or null when there is none (any other error throws). */
export async function readIfPresent(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
