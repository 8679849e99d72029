/**
 * The btrfs driver against real btrfs: a loop-mounted image (losetup + mkfs.btrfs + mount in a temp
 * directory), created and removed by this file.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BtrfsLoop, createBtrfsLoop } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeVolumeDriver } from '../../test/storage/driver-contract.ts';
import { btrfsDriver, parseSubvolumeShow } from './btrfs.ts';

describeVolumeDriver('btrfs driver (real btrfs on a loop device)', async () => {
  const fs = await createBtrfsLoop();
  const root = join(fs.path, 'volumes');
  return {
    driver: btrfsDriver({ root }),
    withoutTools: btrfsDriver({ root, searchPath: '/nonexistent' }),
    [Symbol.asyncDispose]: () => fs.destroy(),
  };
});

describe('btrfs driver specifics', () => {
  let fs: BtrfsLoop;
  beforeAll(async () => {
    fs = await createBtrfsLoop();
  });
  afterAll(async () => {
    await fs?.destroy();
  });

  it('names the package to install when btrfs-progs is missing', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'ployz-nobtrfs-'));
    try {
      const error = await btrfsDriver({ root: fs.path, searchPath: empty })
        .probe()
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'STORAGE_TOOL_MISSING' });
      expect(String(error)).toMatch(/btrfs-progs/);
    } finally {
      await rm(empty, { recursive: true });
    }
  });

  it('refuses a root that is not on btrfs', async () => {
    const error = await btrfsDriver({ root: tmpdir() })
      .probe()
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'STORAGE_INVALID' });
    expect(String(error)).toMatch(/not on a btrfs filesystem/);
  });

  it('keeps the live data as the subvolume <root>/<ns>/<volume>, snapshots beside it', async () => {
    const driver = btrfsDriver({ root: fs.path });
    await driver.probe();
    const volume = await driver.create({
      name: 'web/data',
      quotaBytes: null,
      owner: { uid: 0, gid: 0 },
      mode: 0o755,
    });
    expect(volume).toEqual({ dataset: join(fs.path, 'web/data'), path: join(fs.path, 'web/data') });
    expect((await stat(volume.path)).ino).toBe(256);
    await driver.destroy(volume.dataset);
  });

  it('reads btrfs subvolume show --raw', () => {
    const out = [
      '.snapshots/ns1/vol1/a',
      '\tName: \t\t\ta',
      '\tUUID: \t\t\tbde4f833-fb11-7c48-81cc-b4574b0ad33b',
      '\tParent UUID: \t\t124f7208-ce5d-5f49-ad46-aa472c629089',
      '\tReceived UUID: \t\t-',
      '\tCreation time: \t\t2026-12-02 01:26:57 +0000',
      '\tSubvolume ID: \t\t257',
      '\tQuota group:\t\t0/257',
      '\t  Limit referenced:\t4194304',
      '\t  Limit exclusive:\t-',
      '\t  Usage referenced:\t16384',
      '\t  Usage exclusive:\t16384',
    ].join('\n');
    expect(parseSubvolumeShow(out)).toEqual({
      uuid: 'bde4f833-fb11-7c48-81cc-b4574b0ad33b',
      parentUuid: '124f7208-ce5d-5f49-ad46-aa472c629089',
      receivedUuid: null,
      readonly: false,
      subvolumeId: 257,
      createdAt: '2026-12-02T01:26:57.000Z',
      referenced: 16384,
      limit: 4194304,
    });
    expect(
      parseSubvolumeShow(out.replace('\t  Limit referenced:\t4194304', '\t  Limit referenced:\t-')).limit,
    ).toBe(null);
    const received = parseSubvolumeShow(
      out
        .replace('\tReceived UUID: \t\t-', '\tReceived UUID: \t\tf2dbfb0c-7630-fd4b-a78a-994cba3907ef')
        .concat('\n\tFlags: \t\t\treadonly'),
    );
    expect(received).toMatchObject({ receivedUuid: 'f2dbfb0c-7630-fd4b-a78a-994cba3907ef', readonly: true });
  });
});
