import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { writeAtomic } from './atomic-write.ts';

let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('writeAtomic', () => {
  it('concurrent writers of one file all succeed; it holds one whole text, with its mode, and no temp file stays', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ployz-atomic-'));
    const file = join(dir, 'seed');
    const texts = Array.from({ length: 50 }, (_, i) => `seed-${i}\n`);
    // A credentials rotation and a reconcile pass write the same seed at once (the CI failure:
    // both used `seed.tmp`, and one renamed it from under the other's chmod).
    await Promise.all(texts.map((t) => writeAtomic(file, t, 0o600)));
    expect(texts).toContain(await readFile(file, 'utf8'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['seed']);
  });

  it('leaves no temp file when the write fails', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ployz-atomic-'));
    await expect(writeAtomic(join(dir, 'missing', 'seed'), 'x', 0o600)).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(writeAtomic(join(dir, 'seed'), 'x', 0o600, -2)).rejects.toThrow();
    expect(await readdir(dir)).toEqual([]);
  });
});
