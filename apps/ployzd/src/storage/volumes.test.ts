/**
 * LocalVolumes' branch operations on real btrfs (a loop device): a clone left by a branch that died
 * before its commit is made again, anything else of that name is left alone; a failed branch's
 * clone is discarded only while nothing but the clone is in it.
 */
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type BtrfsLoop, createBtrfsLoop } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalVolumes } from './volumes.ts';

let fs: BtrfsLoop;
let volumes: LocalVolumes;

beforeAll(async () => {
  fs = await createBtrfsLoop();
  const root = join(fs.path, 'volumes');
  // No copy-up in these tests: the Docker engine is never asked for.
  volumes = LocalVolumes.of({ kind: 'btrfs', root }, () => ({}) as Docker);
  await volumes.probe();
});
afterAll(async () => {
  await fs?.destroy();
});

const spec = { name: 'data', quota_bytes: null, owner: { uid: 0, gid: 0 }, mode: 0o755 } as const;

async function code(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (isPloyzError(e) ? e.code : String(e)),
  );
}

describe('LocalVolumes clone and discard', () => {
  it('makes an uncommitted clone again, refuses any other volume of the name, discards only a bare clone', async () => {
    const source = await volumes.ensure({ namespace: 'shop', spec, slot: null, copyUp: null });
    await writeFile(join(source.path, 'f'), 'committed');
    const snap = await volumes.snapshot('shop/data', 'dep-1');

    const first = await volumes.clone('shop/data', snap.id, 'pr/data', null);
    expect(first.created).toBe(true);
    expect(first.tookMs).toBeGreaterThanOrEqual(0);
    // The branch died before its commit: its candidate wrote, nothing snapshotted the clone.
    await writeFile(join(first.path, 'uncommitted'), 'x');
    const again = await volumes.clone('shop/data', snap.id, 'pr/data', null);
    expect(await readdir(again.path)).toEqual(['f']);

    expect(await volumes.discardClone('pr/data', 'another-snapshot')).toBe(false);
    // A commit snapshotted it: it is data now, neither made again nor discarded.
    await volumes.snapshot('pr/data', 'dep-2');
    expect(await code(volumes.clone('shop/data', snap.id, 'pr/data', null))).toBe('STORAGE_EXISTS');
    expect(await volumes.discardClone('pr/data', snap.id)).toBe(false);
    expect((await volumes.describe('pr/data'))?.snapshots.map((s) => s.label)).toEqual(['dep-2']);

    const other = await volumes.clone('shop/data', snap.id, 'pr2/data', null);
    expect(await volumes.discardClone('pr2/data', snap.id)).toBe(true);
    expect(await volumes.describe('pr2/data')).toBeUndefined();
    expect(other.created).toBe(true);
    // A volume that is no clone at all is never taken over.
    expect(await code(volumes.clone('shop/data', snap.id, 'shop/data', null))).toBe('STORAGE_EXISTS');
    expect(await code(volumes.clone('shop/none', snap.id, 'pr3/data', null))).toBe('NOT_FOUND');
  });
});
