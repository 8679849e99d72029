/**
 * The zfs driver against real ZFS: a file-backed pool (zfs-fuse on this machine, started by the
 * fixture when it is not running), created and destroyed by this file.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createZfsPool, type ZfsPool } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, describeVolumeDriver } from '../../test/storage/driver-contract.ts';
import { zfsDriver } from './zfs.ts';

const run = promisify(execFile);

// One pool for the file (zfs-fuse starts and stops once); each suite has its own root dataset.
let shared: Promise<ZfsPool> | undefined;
const sharedPool = () => {
  shared ??= createZfsPool();
  return shared;
};
afterAll(async () => {
  await (await shared)?.destroy();
});

describeVolumeDriver('zfs driver (real zpool on a file)', async () => {
  const pool = await sharedPool();
  return {
    driver: zfsDriver({ root: `${pool.pool}/contract` }),
    withoutTools: zfsDriver({ root: `${pool.pool}/contract`, searchPath: '/nonexistent' }),
    [Symbol.asyncDispose]: async () => undefined,
  };
});

describe('zfs driver specifics', () => {
  let pool: ZfsPool;
  beforeAll(async () => {
    pool = await sharedPool();
  });

  it('retire keeps the unmounted dataset with its final snapshot, which still holds the data', async () => {
    const root = `${pool.pool}/retire`;
    const driver = zfsDriver({ root });
    await driver.probe();
    const volume = await driver.create({
      name: 'shop/data',
      quotaBytes: null,
      owner: { uid: 0, gid: 0 },
      mode: 0o755,
    });
    await writeFile(join(volume.path, 'data.txt'), 'kept');
    const retired = await driver.retire(volume.dataset, 'd9-final');
    expect(retired.kept).toBe(`${root}/_retired/shop/data-d9-final`);
    expect(await driver.open('shop/data')).toBeUndefined();
    // Nothing of it is mounted; its final snapshot is there, and a clone of it has the data.
    const zfs = async (...args: string[]) => (await run('zfs', args)).stdout;
    expect((await zfs('list', '-H', '-r', '-o', 'mounted', retired.kept)).trim().split('\n')).not.toContain(
      'yes',
    );
    const final = (await zfs('list', '-H', '-t', 'snapshot', '-r', '-o', 'name,guid', retired.kept))
      .trim()
      .split('\n')
      .map((line) => line.split('\t'))
      .find(([name]) => name?.endsWith('@d9-final'));
    expect(final?.[0]).toBe(`${retired.kept}/g1@d9-final`);
    expect(retired.note).toContain(`${retired.kept}/g1@d9-final`);
    const mnt = join(pool.mountpoint, 'readback-mnt');
    await zfs('clone', '-o', `mountpoint=${mnt}`, final?.[0] ?? '', `${pool.pool}/readback`);
    expect(await readFile(join(mnt, 'data.txt'), 'utf8')).toBe('kept');
    await zfs('set', 'mountpoint=none', `${pool.pool}/readback`);
    await zfs('destroy', `${pool.pool}/readback`);
    await zfs('destroy', '-r', retired.kept);
  });

  it('names the package to install when zfs is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'ployz-nozfs-'));
    try {
      const driver = zfsDriver({ root: `${pool.pool}/ployz`, searchPath: empty });
      const error = await driver.probe().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STORAGE_TOOL_MISSING' });
      expect(String(error)).toMatch(/zfs-fuse/);
    } finally {
      await rm(empty, { recursive: true });
    }
  });

  it('refuses a pool that does not exist, naming it', async () => {
    const error = await zfsDriver({ root: 'pzt-no-such-pool/ployz' })
      .probe()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STORAGE_INVALID' });
    expect(String(error)).toMatch(/pzt-no-such-pool/);
  });

  it('keeps datasets at <root>/<ns>/<volume> under the pool, mounted below its mountpoint', async () => {
    const driver = zfsDriver({ root: `${pool.pool}/ployz` });
    const probe = await driver.probe();
    expect(probe.implementation).toBe(pool.implementation);
    const volume = await driver.create({
      name: 'web/data',
      quotaBytes: null,
      owner: { uid: 0, gid: 0 },
      mode: 0o755,
    });
    expect(volume).toEqual({
      dataset: `${pool.pool}/ployz/web/data`,
      path: join(pool.mountpoint, 'ployz/web/data'),
    });
    await driver.destroy(volume.dataset);
  });

  it('refuses a revert or destroy while a writer holds the volume, changing nothing', async () => {
    const driver = zfsDriver({ root: `${pool.pool}/ployz` });
    const volume = await driver.create({
      name: 'web/busy',
      quotaBytes: null,
      owner: { uid: 0, gid: 0 },
      mode: 0o755,
    });
    const file = join(volume.path, 'f');
    await writeFile(file, 'one');
    const first = await driver.snapshot(volume.dataset, 'first');
    await writeFile(file, 'two');
    const writer = await open(file, 'r+');
    try {
      expect(await codeOf(driver.revert(volume.dataset, first.id))).toBe('STORAGE_BUSY');
      expect(await codeOf(driver.destroy(volume.dataset))).toBe('STORAGE_BUSY');
    } finally {
      await writer.close();
    }
    expect(await readFile(file, 'utf8')).toBe('two');
    expect((await driver.snapshots(volume.dataset)).map((s) => s.label)).toEqual(['first']);
    await driver.destroy(volume.dataset);
    expect(await driver.open('web/busy')).toBeUndefined();
  });
});
