import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadedIds, splitRef } from './docker-images.ts';
import { type ImageEngine, ImageReceiver } from './receiver.ts';

const ID = `sha256:${'a'.repeat(64)}`;
const OTHER = `sha256:${'b'.repeat(64)}`;
const T1 = '0'.repeat(32);
const T2 = '1'.repeat(32);

/** An engine whose `load` reads the whole input and then registers `registers` (or fails). */
function fakeEngine(options: { registers?: string; failLoad?: string } = {}) {
  const images = new Map<string, string>(); // name or id → id
  const state = { loads: 0, cancelled: 0, received: Buffer.alloc(0), removed: [] as string[] };
  const engine: ImageEngine = {
    resolve: async (ref) => images.get(ref) ?? null,
    load: (input: Readable, signal: AbortSignal) =>
      new Promise<string[]>((resolve, reject) => {
        state.loads += 1;
        const parts: Buffer[] = [];
        signal.addEventListener('abort', () => {
          state.cancelled += 1;
          reject(new Error('request aborted'));
        });
        input.on('data', (c: Buffer) => parts.push(c));
        input.on('end', () => {
          if (signal.aborted) return;
          state.received = Buffer.concat(parts);
          if (options.failLoad) return reject(new Error(options.failLoad));
          const id = options.registers ?? ID;
          images.set(id, id);
          resolve([id]);
        });
      }),
    tag: async (id, ref) => {
      images.set(ref, id);
    },
    remove: async (id) => {
      images.delete(id);
      state.removed.push(id);
    },
  };
  return { engine, images, state };
}

const open = (r: ImageReceiver, transfer = T1) =>
  r.open({ machine: 'm2', transfer, image: 'ployz/hello:latest', image_id: ID, size_bytes: 10 });
const chunk = (r: ImageReceiver, seq: number, data: string, transfer = T1) =>
  r.chunk({ machine: 'm2', transfer, seq, data: Buffer.from(data).toString('base64') });
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('ImageReceiver', () => {
  it('writes chunks in order into one load, checks bytes and sha256, then tags the name', async () => {
    const f = fakeEngine();
    const r = new ImageReceiver(() => f.engine);
    expect(await open(r)).toEqual({ present: false, window: 8 });
    await Promise.all([chunk(r, 1, 'world'), chunk(r, 0, 'hello ')]);
    const closed = await r.close({
      machine: 'm2',
      transfer: T1,
      chunks: 2,
      bytes: 11,
      sha256: sha('hello world'),
    });
    expect(closed).toMatchObject({ image_id: ID, bytes: 11 });
    expect(f.state.received.toString()).toBe('hello world');
    expect(f.images.get('ployz/hello:latest')).toBe(ID);
    expect(r.transfers).toBe(0);
  });

  it('an image held by id already is present: nothing opened, only the name tagged', async () => {
    const f = fakeEngine();
    f.images.set(ID, ID);
    const r = new ImageReceiver(() => f.engine);
    expect(await r.has({ machine: 'm2', image: 'ployz/hello:latest', image_id: ID })).toEqual({
      present: true,
      local_id: null,
    });
    expect(await open(r)).toMatchObject({ present: true });
    expect(f.state.loads).toBe(0);
    expect(f.images.get('ployz/hello:latest')).toBe(ID);
  });

  it('the same name on another id is not present (checked by id)', async () => {
    const f = fakeEngine();
    f.images.set('ployz/hello:latest', OTHER);
    f.images.set(OTHER, OTHER);
    const r = new ImageReceiver(() => f.engine);
    expect(await r.has({ machine: 'm2', image: 'ployz/hello:latest', image_id: ID })).toEqual({
      present: false,
      local_id: OTHER,
    });
  });

  it('an abort cancels the load: nothing registered, later chunks refused with IMAGE_TRANSFER_FAILED', async () => {
    const f = fakeEngine();
    const r = new ImageReceiver(() => f.engine);
    await open(r);
    await chunk(r, 0, 'half of it');
    expect(r.abort({ machine: 'm2', transfer: T1, reason: 'deploy failed' })).toEqual({ aborted: true });
    expect(f.state.cancelled).toBe(1);
    expect(f.images.size).toBe(0);
    await expect(chunk(r, 1, 'rest')).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_FAILED' });
    expect(r.abort({ machine: 'm2', transfer: T1, reason: 'again' })).toEqual({ aborted: false });
  });

  it('a sender gone quiet: the transfer is dropped after the idle time, the load cancelled', async () => {
    const f = fakeEngine();
    const r = new ImageReceiver(() => f.engine, { idleMs: 30 });
    await open(r);
    await chunk(r, 0, 'x');
    await new Promise((res) => setTimeout(res, 80));
    expect(r.transfers).toBe(0);
    expect(f.state.cancelled).toBe(1);
    await expect(
      r.close({ machine: 'm2', transfer: T1, chunks: 1, bytes: 1, sha256: sha('x') }),
    ).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_FAILED' });
  });

  it('a byte count or sha256 that differs is IMAGE_TRANSFER_MISMATCH and the load is cancelled before it registers', async () => {
    const f = fakeEngine();
    const r = new ImageReceiver(() => f.engine);
    await open(r);
    await chunk(r, 0, 'abc');
    await expect(
      r.close({ machine: 'm2', transfer: T1, chunks: 2, bytes: 6, sha256: sha('abcdef') }),
    ).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_MISMATCH' });
    await open(r, T2);
    await chunk(r, 0, 'abc', T2);
    await expect(
      r.close({ machine: 'm2', transfer: T2, chunks: 1, bytes: 3, sha256: sha('abd') }),
    ).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_MISMATCH' });
    expect(f.state.cancelled).toBe(2);
    expect(f.images.size).toBe(0);
  });

  it('a load that registers another id is a mismatch, and what it registered is removed', async () => {
    const f = fakeEngine({ registers: OTHER });
    const r = new ImageReceiver(() => f.engine);
    await open(r);
    await chunk(r, 0, 'abc');
    await expect(
      r.close({ machine: 'm2', transfer: T1, chunks: 1, bytes: 3, sha256: sha('abc') }),
    ).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_MISMATCH' });
    expect(f.state.removed).toEqual([OTHER]);
    expect(f.images.get('ployz/hello:latest')).toBeUndefined();
  });

  it('a failing docker load is IMAGE_TRANSFER_FAILED at close; a chunk outside the window is refused', async () => {
    const f = fakeEngine({ failLoad: 'invalid tar header' });
    const r = new ImageReceiver(() => f.engine, { window: 2 });
    await open(r);
    await expect(chunk(r, 5, 'far ahead')).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_FAILED' });
    await open(r, T2);
    await chunk(r, 0, 'abc', T2);
    await expect(
      r.close({ machine: 'm2', transfer: T2, chunks: 1, bytes: 3, sha256: sha('abc') }),
    ).rejects.toThrow(/invalid tar header/);
  });

  it('refuses more transfers at once than it takes', async () => {
    const f = fakeEngine();
    const r = new ImageReceiver(() => f.engine, { maxTransfers: 1 });
    await open(r);
    await expect(open(r, T2)).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_FAILED' });
    r.abortAll('test over');
  });
});

describe('docker load and names', () => {
  it('reads the ids a load reports and its error line', () => {
    expect(loadedIds(`{"stream":"Loaded image ID: ${ID}\\n"}\n`)).toEqual([ID]);
    expect(() =>
      loadedIds('{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}\n'),
    ).toThrow('unexpected EOF');
  });

  it('splits names into repository and tag', () => {
    expect(splitRef('ployz/hello:latest')).toEqual({ repo: 'ployz/hello', tag: 'latest' });
    expect(splitRef('registry.local:5000/app')).toEqual({ repo: 'registry.local:5000/app', tag: 'latest' });
    expect(splitRef('app@sha256:abc')).toBeNull();
  });
});
