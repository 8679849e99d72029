/**
 * The one behavioural suite every volume driver passes, run against the real tools by
 * src/storage/{zfs,btrfs,dir}.test.ts: create with quota/owner/mode → write → snapshot → write →
 * snapshot → revert to the first → revert to the second → undo a revert; destroy a snapshot; quota exceeded fails the
 * write; a shrink below used is refused; a clone of a snapshot shares its data (free space) and is
 * independent both ways, a replace makes another volume's snapshot the live data; destroy. A driver without snapshots or quotas (dir) must
 * refuse those with STORAGE_UNSUPPORTED instead.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { isPloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VolumeDriver } from '../../src/storage/port.ts';

export interface DriverFixture extends AsyncDisposable {
  driver: VolumeDriver;
  /** The same driver with an empty PATH: a call that reaches a tool fails STORAGE_TOOL_MISSING. */
  withoutTools?: VolumeDriver;
}

const MiB = 1024 * 1024;
/** The clone test's file: large enough that a copy would show in the filesystem's free space. */
const BIG = 32 * MiB;

/** Free bytes of the filesystem holding `path`. */
async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

/** Commits what was written (btrfs: the transaction; zfs: the txg), so free space is current. */
async function settle(path: string): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    execFile('sync', ['-f', path], (error) => (error ? reject(error) : resolve())),
  );
}
const QUOTA = 8 * MiB;
const OWNER = { uid: 10001, gid: 10002 };
const MODE = 0o750;

/** Resolves to the error's code when the promise rejects with a PloyzError, fails otherwise. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isPloyzError(error)) return error.code;
    throw error;
  }
  throw new Error('expected a PloyzError, the call succeeded');
}

/** Writes 1 MiB chunks until `bytes` or an error; the errno code of that error, if any. */
async function fill(path: string, bytes: number): Promise<string | undefined> {
  const handle = await open(path, 'w');
  const chunk = Buffer.alloc(MiB, 7);
  try {
    for (let written = 0; written < bytes; written += MiB) await handle.write(chunk);
    await handle.sync();
    return undefined;
  } catch (error) {
    const { code, errno } = error as NodeJS.ErrnoException;
    // libuv has no name for EDQUOT: Node reports it as "Unknown system error -122".
    return errno === -constants.errno.EDQUOT ? 'EDQUOT' : code;
  } finally {
    await handle.close().catch(() => undefined);
  }
}

export function describeVolumeDriver(title: string, setup: () => Promise<DriverFixture>): void {
  describe(title, () => {
    let fixture: DriverFixture;
    let driver: VolumeDriver;

    beforeAll(async () => {
      fixture = await setup();
      driver = fixture.driver;
    });
    afterAll(async () => {
      await fixture?.[Symbol.asyncDispose]();
    });

    it('probes its tools and root and says what it can do', async () => {
      const probe = await driver.probe();
      expect(probe.kind).toBe(driver.kind);
      expect(probe.capabilities).toEqual(driver.capabilities);
    });

    it('creates a volume with its owner and mode, mounted at its path, and adopts it by name', async () => {
      const quotaBytes = driver.capabilities.quota ? QUOTA : null;
      const volume = await driver.create({ name: 'ns-a/owned', quotaBytes, owner: OWNER, mode: MODE });
      const s = await stat(volume.path);
      expect({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777, dir: s.isDirectory() }).toEqual({
        ...OWNER,
        mode: MODE,
        dir: true,
      });
      expect((await driver.usage(volume.dataset)).quotaBytes).toBe(quotaBytes);
      expect(await driver.open('ns-a/owned')).toEqual(volume);
      expect(await codeOf(driver.create({ name: 'ns-a/owned', quotaBytes, owner: OWNER, mode: MODE }))).toBe(
        'STORAGE_EXISTS',
      );
      expect(await driver.open('ns-a/missing')).toBeUndefined();
      await driver.destroy(volume.dataset);
    });

    it('refuses names, labels and handles that are not safe tokens, before running anything', async () => {
      const base = { quotaBytes: null, owner: OWNER, mode: MODE };
      const untooled = fixture.withoutTools ?? driver;
      for (const name of ['../etc', '-o/x', 'a/b/c', 'one', 'ns/UPPER', 'ns/a b', 'ns/a;rm', 'ns/']) {
        expect(await codeOf(untooled.create({ ...base, name })), name).toBe('STORAGE_INVALID');
      }
      const { root } = await driver.probe();
      expect(await codeOf(untooled.snapshot(`${root}/ns/x`, '-r'))).toBe('STORAGE_INVALID');
      expect(await codeOf(untooled.growQuota(`${root}/ns/x`, 10))).toBe('STORAGE_INVALID');
      expect(await codeOf(driver.create({ ...base, name: 'ns/x', mode: 0o17777 }))).toBe('STORAGE_INVALID');
      expect(await codeOf(driver.create({ ...base, name: 'ns/x', owner: { uid: -1, gid: 0 } }))).toBe(
        'STORAGE_INVALID',
      );
      expect(await codeOf(driver.usage('/etc'))).toBe('STORAGE_INVALID');
      expect(await codeOf(driver.destroy('tank/other/ns/x'))).toBe('STORAGE_INVALID');
      if (driver.capabilities.quota) {
        expect(await codeOf(driver.create({ ...base, name: 'ns/x', quotaBytes: 1000 }))).toBe(
          'STORAGE_INVALID',
        );
      }
      const volume = await driver.create({ ...base, name: 'ns-a/labels' });
      for (const label of ['-r', 'a@b', 'a/b', '', '.hidden', 'x'.repeat(129)]) {
        expect(await codeOf(driver.snapshot(volume.dataset, label)), label).toBe('STORAGE_INVALID');
      }
      expect(await driver.open('ns/x')).toBeUndefined();
      await driver.destroy(volume.dataset);
    });

    it('reverts to an older snapshot and then to a newer one, keeping every snapshot and the path', async () => {
      const volume = await driver.create({
        name: 'ns-a/history',
        quotaBytes: null,
        owner: OWNER,
        mode: MODE,
      });
      const file = join(volume.path, 'data.txt');
      await writeFile(file, 'one');
      if (!driver.capabilities.snapshots) {
        expect(await codeOf(driver.snapshot(volume.dataset, 'first'))).toBe('STORAGE_UNSUPPORTED');
        expect(await codeOf(driver.revert(volume.dataset, 'anything'))).toBe('STORAGE_UNSUPPORTED');
        expect(await driver.snapshots(volume.dataset)).toEqual([]);
        await driver.destroy(volume.dataset);
        return;
      }
      const first = await driver.snapshot(volume.dataset, 'first');
      await writeFile(file, 'two');
      const second = await driver.snapshot(volume.dataset, 'second');
      await writeFile(file, 'three'); // never snapshotted by the caller: only the pre-revert one keeps it
      expect(await codeOf(driver.snapshot(volume.dataset, 'first'))).toBe('STORAGE_EXISTS');

      const back = await driver.revert(volume.dataset, first.id);
      expect(await readFile(file, 'utf8')).toBe('one');
      const s = await stat(volume.path);
      expect({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }).toEqual({ ...OWNER, mode: MODE });

      await driver.revert(volume.dataset, second.id);
      expect(await readFile(file, 'utf8')).toBe('two');

      // The state the first revert replaced is kept: undoing that revert brings back "three".
      await driver.revert(volume.dataset, back.preRevert.id);
      expect(await readFile(file, 'utf8')).toBe('three');

      const listed = await driver.snapshots(volume.dataset);
      expect(listed.map((x) => x.label).slice(0, 3)).toEqual(['first', 'second', back.preRevert.label]);
      expect(listed).toHaveLength(5); // first, second and one pre-revert per revert
      expect(listed.find((x) => x.label === 'first')?.id).toBe(first.id);
      expect(listed.find((x) => x.label === 'second')?.id).toBe(second.id);
      for (const x of listed) {
        expect(x.bytes).toBeGreaterThan(0);
        expect(Number.isNaN(Date.parse(x.createdAt))).toBe(false);
      }
      expect(await codeOf(driver.revert(volume.dataset, 'no-such-id'))).toBe('NOT_FOUND');
      expect(await driver.open('ns-a/history')).toEqual(volume);
      await driver.destroy(volume.dataset);
    });

    it('retires a volume: its path is gone, the final copy keeps the data (namespace rm --delete-volumes)', async () => {
      const volume = await driver.create({ name: 'ns-r/gone', quotaBytes: null, owner: OWNER, mode: MODE });
      await writeFile(join(volume.path, 'data.txt'), 'last words');
      if (driver.capabilities.snapshots) await driver.snapshot(volume.dataset, 'older');
      const retired = await driver.retire(volume.dataset, 'd1-final');
      expect(await driver.open('ns-r/gone')).toBeUndefined();
      expect(
        await readFile(join(volume.path, 'data.txt'), 'utf8').catch((e: NodeJS.ErrnoException) => e.code),
      ).toBe('ENOENT');
      expect(retired.kept).toMatch(/retired\/ns-r\/gone-d1-final$/);
      expect(retired.snapshot?.label ?? null).toBe(driver.capabilities.snapshots ? 'd1-final' : null);
      expect(retired.note).toContain(retired.kept);
      // zfs keeps an unmounted dataset (zfs.test.ts reads it); btrfs and dir a readable directory.
      if (driver.kind !== 'zfs')
        expect(await readFile(join(retired.kept, 'data.txt'), 'utf8')).toBe('last words');
      // A second retire of the same name and label is refused, never overwriting the kept copy.
      const again = await driver.create({ name: 'ns-r/gone', quotaBytes: null, owner: OWNER, mode: MODE });
      expect(await codeOf(driver.retire(again.dataset, 'd1-final'))).toBe('STORAGE_EXISTS');
      expect(await driver.open('ns-r/gone')).toBeDefined();
      await driver.destroy(again.dataset);
    });

    it('destroys a snapshot (retention) and keeps the data and the other snapshots', async () => {
      const volume = await driver.create({ name: 'ns-a/prune', quotaBytes: null, owner: OWNER, mode: MODE });
      const file = join(volume.path, 'data.txt');
      await writeFile(file, 'one');
      if (!driver.capabilities.snapshots) {
        expect(await codeOf(driver.destroySnapshot(volume.dataset, 'x'))).toBe('STORAGE_UNSUPPORTED');
        await driver.destroy(volume.dataset);
        return;
      }
      const old = await driver.snapshot(volume.dataset, 'old');
      await writeFile(file, 'two');
      const kept = await driver.snapshot(volume.dataset, 'kept');
      await driver.destroySnapshot(volume.dataset, old.id);
      expect((await driver.snapshots(volume.dataset)).map((x) => x.id)).toEqual([kept.id]);
      expect(await readFile(file, 'utf8')).toBe('two');
      expect(await codeOf(driver.destroySnapshot(volume.dataset, old.id))).toBe('NOT_FOUND');
      // A snapshot a revert went through is still usable after another is destroyed.
      await writeFile(file, 'three');
      await driver.revert(volume.dataset, kept.id);
      expect(await readFile(file, 'utf8')).toBe('two');
      await driver.destroy(volume.dataset);
    });

    it('fails a write past the quota, refuses a shrink below used, and grows', async () => {
      if (!driver.capabilities.quota) {
        expect(
          await codeOf(driver.create({ name: 'ns-a/quota', quotaBytes: QUOTA, owner: OWNER, mode: MODE })),
        ).toBe('STORAGE_UNSUPPORTED');
        const volume = await driver.create({
          name: 'ns-a/quota',
          quotaBytes: null,
          owner: OWNER,
          mode: MODE,
        });
        expect(await codeOf(driver.growQuota(volume.dataset, QUOTA))).toBe('STORAGE_UNSUPPORTED');
        await writeFile(join(volume.path, 'f'), Buffer.alloc(MiB));
        expect((await driver.usage(volume.dataset)).usedBytes).toBeGreaterThanOrEqual(MiB);
        await driver.destroy(volume.dataset);
        return;
      }
      const volume = await driver.create({ name: 'ns-a/quota', quotaBytes: QUOTA, owner: OWNER, mode: MODE });
      const big = join(volume.path, 'big');
      expect(['ENOSPC', 'EDQUOT']).toContain(await fill(big, 2 * QUOTA));
      const full = await driver.usage(volume.dataset);
      expect(full.quotaBytes).toBe(QUOTA);
      expect(full.usedBytes).toBeGreaterThan(QUOTA / 2);

      const shrink = driver.growQuota(volume.dataset, 2 * MiB);
      expect(await codeOf(shrink)).toBe('STORAGE_INVALID');
      await shrink.catch((error: unknown) => {
        expect(String(error)).toMatch(/below/);
      });
      expect((await driver.usage(volume.dataset)).quotaBytes).toBe(QUOTA);

      await rm(big);
      const small = driver.capabilities.snapshots
        ? await driver.snapshot(volume.dataset, 'before-grow')
        : undefined;
      const grown = await driver.growQuota(volume.dataset, 4 * QUOTA);
      expect(grown.quotaBytes).toBe(4 * QUOTA);
      expect(await fill(join(volume.path, 'more'), QUOTA + 2 * MiB)).toBeUndefined();
      if (small) {
        // A revert keeps the volume's current quota, not the one the snapshot was taken under.
        await driver.revert(volume.dataset, small.id);
        expect((await driver.usage(volume.dataset)).quotaBytes).toBe(4 * QUOTA);
        expect(await fill(join(volume.path, 'more'), QUOTA + 2 * MiB)).toBeUndefined();
      }
      await driver.destroy(volume.dataset);
    });

    it('clones a snapshot copy-on-write (no data copied) into a volume whose writes never reach the source', async () => {
      const source = await driver.create({ name: 'ns-c/source', quotaBytes: null, owner: OWNER, mode: MODE });
      const marker = join(source.path, 'marker');
      await writeFile(marker, 'source');
      if (!driver.capabilities.snapshots) {
        const spec = { name: 'ns-d/clone', quotaBytes: null };
        expect(await codeOf(driver.clone(source.dataset, 'any', spec))).toBe('STORAGE_UNSUPPORTED');
        expect(await codeOf(driver.replace(source.dataset, source.dataset, 'any'))).toBe(
          'STORAGE_UNSUPPORTED',
        );
        expect(await driver.originOf(source.dataset)).toBeNull();
        await driver.destroy(source.dataset);
        return;
      }
      const big = randomBytes(BIG);
      await writeFile(join(source.path, 'big'), big);
      const base = await driver.snapshot(source.dataset, 'base');
      await writeFile(marker, 'after'); // after the snapshot: not in the clone
      await settle(source.path);
      const freeBefore = await freeBytes(source.path);

      const quotaBytes = driver.capabilities.quota ? 4 * BIG : null;
      const clone = await driver.clone(source.dataset, base.id, { name: 'ns-d/clone', quotaBytes });
      await settle(clone.path);
      // Copy-on-write: the filesystem holds the big file once (a copy would take BIG more).
      expect(freeBefore - (await freeBytes(clone.path))).toBeLessThan(BIG / 4);
      expect(await driver.open('ns-d/clone')).toEqual(clone);
      expect(await readFile(join(clone.path, 'marker'), 'utf8')).toBe('source');
      expect((await readFile(join(clone.path, 'big'))).equals(big)).toBe(true);
      const s = await stat(clone.path);
      expect({ uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 }).toEqual({ ...OWNER, mode: MODE });
      expect(await driver.originOf(clone.dataset)).toBe(base.id);
      expect(await driver.originOf(source.dataset)).toBeNull();
      expect(await driver.snapshots(clone.dataset)).toEqual([]);
      if (quotaBytes !== null) expect((await driver.usage(clone.dataset)).quotaBytes).toBe(quotaBytes);

      // Independent both ways: a write in the clone is absent from the source, and the other way.
      await writeFile(join(clone.path, 'marker'), 'clone');
      await writeFile(join(clone.path, 'only-in-clone'), 'x');
      await writeFile(join(source.path, 'only-in-source'), 'y');
      expect(await readFile(marker, 'utf8')).toBe('after');
      expect(await readdir(source.path)).not.toContain('only-in-clone');
      expect(await readdir(clone.path)).not.toContain('only-in-source');
      // Each keeps its own snapshots.
      const inClone = await driver.snapshot(clone.dataset, 'in-clone');
      expect((await driver.snapshots(clone.dataset)).map((x) => x.label)).toEqual(['in-clone']);
      expect((await driver.snapshots(source.dataset)).map((x) => x.label)).toEqual(['base']);

      expect(await codeOf(driver.clone(source.dataset, base.id, { name: 'ns-d/clone', quotaBytes }))).toBe(
        'STORAGE_EXISTS',
      );
      expect(
        await codeOf(driver.clone(source.dataset, 'no-such-id', { name: 'ns-d/other', quotaBytes })),
      ).toBe('NOT_FOUND');
      expect(await driver.open('ns-d/other')).toBeUndefined();

      // Replace (promote --with-data): the clone's snapshot becomes the source's live data, the
      // source's own history stays, and the state it replaced comes back by a revert.
      const replaced = await driver.replace(source.dataset, clone.dataset, inClone.id);
      expect(await readFile(marker, 'utf8')).toBe('clone');
      expect(await readdir(source.path)).toContain('only-in-clone');
      expect((await driver.snapshots(source.dataset)).map((x) => x.label)).toEqual([
        'base',
        replaced.preRevert.label,
      ]);
      expect((await driver.snapshots(clone.dataset)).map((x) => x.label)).toEqual(['in-clone']);
      await writeFile(join(source.path, 'after-replace'), 'z');
      expect(await readdir(clone.path)).not.toContain('after-replace');
      await driver.revert(source.dataset, replaced.preRevert.id);
      expect(await readFile(marker, 'utf8')).toBe('after');
      await driver.revert(source.dataset, base.id);
      expect(await readFile(marker, 'utf8')).toBe('source');
      expect(await readFile(join(clone.path, 'marker'), 'utf8')).toBe('clone');
      expect(await codeOf(driver.replace(source.dataset, clone.dataset, 'no-such-id'))).toBe('NOT_FOUND');
      // No destroy here: on zfs each of the two is now a clone of the other's snapshot (destroying
      // either needs a zfs promote first); the fixture removes the whole pool or filesystem.
    });

    it('destroys a volume with its snapshots; destroying again is a no-op', async () => {
      const volume = await driver.create({ name: 'ns-b/gone', quotaBytes: null, owner: OWNER, mode: MODE });
      await writeFile(join(volume.path, 'f'), 'x');
      if (driver.capabilities.snapshots) await driver.snapshot(volume.dataset, 'kept');
      await driver.destroy(volume.dataset);
      expect(await driver.open('ns-b/gone')).toBeUndefined();
      expect(await codeOf(driver.snapshots(volume.dataset))).toBe('NOT_FOUND');
      await driver.destroy(volume.dataset);
      // The name is free again, with no snapshot left over from before.
      const again = await driver.create({ name: 'ns-b/gone', quotaBytes: null, owner: OWNER, mode: MODE });
      expect(await driver.snapshots(again.dataset)).toEqual([]);
      await driver.destroy(again.dataset);
    });
  });
}
