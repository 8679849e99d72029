/** The dir driver against real directories in a temp dir: no snapshots and no quota, said so. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeVolumeDriver } from '../../test/storage/driver-contract.ts';
import { dirDriver } from './dir.ts';

describeVolumeDriver('dir driver (plain directories)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ployz-dir-'));
  return {
    driver: dirDriver({ root: join(root, 'volumes') }),
    [Symbol.asyncDispose]: () => rm(root, { recursive: true, force: true }),
  };
});
