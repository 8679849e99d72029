import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPloyzError } from '@ployz/types';
import { afterAll, describe, expect, it } from 'vitest';
import { instance, machine, REV_A, release, revision } from '../test/records.ts';
import { FileSnapshotFeed, LazyStoreFeed, seedFromFile } from './feeds.ts';

const dir = await mkdtemp(join(tmpdir(), 'ployz-feeds-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('FileSnapshotFeed', () => {
  it('serves the records of a snapshot file at its sequence', async () => {
    const path = join(dir, 'ok.json');
    const snapshot = {
      seq: 7,
      machines: [machine('m1')],
      revisions: [revision(REV_A, 'web', [])],
      releases: [release('web', REV_A, [{ slot: 0, instance: 'web-0' }])],
      instances: [instance('web-0', 'web', 0, REV_A)],
    };
    await writeFile(path, JSON.stringify(snapshot));
    const feed = await FileSnapshotFeed.load(path);
    const loaded = await feed.snapshot();
    expect(loaded.seq).toBe(7);
    expect(loaded.instances.map((i) => i.id)).toEqual(['web-0']);
    expect(await feed.lastSeq()).toBe(7);
  });

  it.each([
    ['a missing file', 'missing.json', null],
    ['a file that is not JSON', 'bad.json', '{ nope'],
    ['JSON that is not a snapshot', 'wrong.json', '{"instances": [{"id": 1}]}'],
  ])('refuses %s with CONFIG_INVALID naming the file', async (_what, name, content) => {
    const path = join(dir, name);
    if (content !== null) await writeFile(path, content);
    const error = await FileSnapshotFeed.load(path).catch((e: unknown) => e);
    expect(isPloyzError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain(path);
  });

  it('has no events: follow ends only when aborted', async () => {
    const path = join(dir, 'empty.json');
    await writeFile(path, '{}');
    const feed = await FileSnapshotFeed.load(path);
    const abort = new AbortController();
    const events: unknown[] = [];
    const done = (async () => {
      for await (const event of feed.follow(0, abort.signal)) events.push(event);
    })();
    abort.abort();
    await done;
    expect(events).toEqual([]);
  });
});

describe('LazyStoreFeed', () => {
  it('reports STORE_UNAVAILABLE (not a crash) while nothing answers, and refuses after close', async () => {
    const feed = new LazyStoreFeed({ servers: 'nats://127.0.0.1:1', installation: 'local', authority: 'a' });
    const error = await feed.snapshot().catch((e: unknown) => e);
    expect(isPloyzError(error, 'STORE_UNAVAILABLE')).toBe(true);
    expect(await feed.lastSeq()).toBeNull();
    await feed.close();
    const after = await feed.snapshot().catch((e: unknown) => e);
    expect(isPloyzError(after, 'STORE_UNAVAILABLE')).toBe(true);
  });
});

describe('seedFromFile', () => {
  it('reads the seed at every call, so a rotated file is picked up', async () => {
    const path = join(dir, 'seed');
    await writeFile(path, 'SUAAAA\n');
    const read = seedFromFile(path);
    expect(read()).toBe('SUAAAA');
    await writeFile(path, 'SUBBBB\n');
    expect(read()).toBe('SUBBBB');
  });

  it('a missing or wrong seed file is CONFIG_INVALID when the feed is made, not a silent retry loop', async () => {
    const missing = () =>
      new LazyStoreFeed({
        servers: 'nats://127.0.0.1:1',
        installation: 'i',
        authority: 'a',
        nkeySeedFile: join(dir, 'nope'),
      });
    expect(missing).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    const path = join(dir, 'not-a-seed');
    await writeFile(path, 'hello\n');
    expect(() => seedFromFile(path)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(/SU/) }),
    );
  });
});
