/**
 * A sha256 over a directory tree, for checking that a received Btrfs subvolume holds what the source
 * snapshot held (ADR 0021: received_uuid alone says which subvolume a stream came from, not that all
 * of it arrived). Every entry, depth first in byte order of names, adds one JSON record to the hash:
 * its path relative to the root, type, permission bits, owner, and for a file its size and its
 * content's sha256, for a symlink its target. Directory sizes and times are left out: they differ
 * between filesystems for the same content.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { PloyzError } from '@ployz/types';

export interface TreeHash {
  sha256: string;
  /** Entries hashed, the root included. */
  entries: number;
  /** Bytes of file content hashed. */
  bytes: number;
}

const READ_CHUNK = 1024 * 1024;

async function fileSha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: READ_CHUNK })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

function typeOf(mode: number): string {
  switch (mode & 0o170000) {
    case 0o040000:
      return 'd';
    case 0o100000:
      return 'f';
    case 0o120000:
      return 'l';
    case 0o010000:
      return 'p';
    case 0o140000:
      return 's';
    case 0o020000:
      return 'c';
    case 0o060000:
      return 'b';
    default:
      return '?';
  }
}

/** The tree's sha256; a file that changes while it is read fails it (hash a read-only snapshot). */
export async function hashTree(root: string): Promise<TreeHash> {
  const hash = createHash('sha256');
  const total = { entries: 0, bytes: 0 };

  async function visit(rel: string): Promise<void> {
    const path = rel === '' ? root : join(root, rel);
    const st = await lstat(path);
    const type = typeOf(st.mode);
    const record: Array<string | number> = [rel, type, st.mode & 0o7777, st.uid, st.gid];
    if (type === 'f') {
      const content = await fileSha256(path);
      if (content.bytes !== st.size) {
        throw new PloyzError(
          'STORAGE_FAILED',
          `${path} changed while it was hashed; hash a read-only snapshot`,
          {
            details: { path },
          },
        );
      }
      record.push(st.size, content.sha256);
      total.bytes += content.bytes;
    } else if (type === 'l') {
      record.push(await readlink(path));
    } else if (type === 'c' || type === 'b') {
      record.push(Number(st.rdev));
    }
    hash.update(`${JSON.stringify(record)}\n`);
    total.entries++;
    if (type !== 'd') return;
    const names = (await readdir(path)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) await visit(rel === '' ? name : `${rel}/${name}`);
  }

  await visit('');
  return { sha256: hash.digest('hex'), ...total };
}
