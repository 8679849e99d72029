/**
 * The receiver on the real Docker engine: a tiny image made here (`docker import` of a tar with a
 * random file, so its id is new), saved, removed, then received — half of it and aborted, which
 * registers nothing; cut off at a chunk boundary (with the sender's sha256: a mismatch; with its
 * own: the load fails), which registers nothing; whole, which registers that id under its name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerImages } from './docker-images.ts';
import { rechunk } from './flow.ts';
import { ImageReceiver } from './receiver.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });
const name = `ployz-test/transfer-${randomBytes(4).toString('hex')}`;
const ref = `${name}:v1`;
const images = new DockerImages(() => docker);
let tar: Buffer;
let id: string;

/** A tar of one file (ustar header + content + end-of-archive). */
function tarOf(file: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(file, 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, '0')}\0`,
    136,
  );
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

async function drain(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as Readable) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

const T = (n: number) => n.toString(16).padStart(32, '0');
const open = (r: ImageReceiver, transfer: string) =>
  r.open({ machine: 'm2', transfer, image: ref, image_id: id, size_bytes: tar.length });

async function send(r: ImageReceiver, transfer: string, bytes: Buffer): Promise<number> {
  let seq = 0;
  for await (const chunk of rechunk(Readable.from([bytes]), 4096)) {
    await r.chunk({ machine: 'm2', transfer, seq, data: chunk.toString('base64') });
    seq += 1;
  }
  return seq;
}

describe('image transfer into the real engine', () => {
  beforeAll(async () => {
    const layer = tarOf('payload.bin', randomBytes(64 * 1024));
    await drain(await docker.importImage(Readable.from([layer]), { repo: name, tag: 'v1' }));
    id = (await docker.getImage(ref).inspect()).Id;
    tar = await drain(await docker.getImage(id).get());
    await docker.getImage(id).remove({ force: true });
    expect(await images.resolve(id)).toBeNull();
  }, 60_000);

  afterAll(async () => {
    await docker
      .getImage(id)
      .remove({ force: true })
      .catch(() => {});
  });

  it('half a tar, then an abort: the engine holds nothing of it', async () => {
    const r = new ImageReceiver(() => images);
    expect(await open(r, T(1))).toMatchObject({ present: false });
    await send(r, T(1), tar.subarray(0, Math.floor(tar.length / 2)));
    expect(r.abort({ machine: 'm2', transfer: T(1), reason: 'test' })).toEqual({ aborted: true });
    await new Promise((res) => setTimeout(res, 300));
    expect(await images.resolve(id)).toBeNull();
    expect(await images.resolve(ref)).toBeNull();
  });

  it('a tar cut at a chunk boundary: a sha256 that differs is a mismatch; closed honestly the load fails; nothing is registered either way', async () => {
    const r = new ImageReceiver(() => images);
    await open(r, T(2));
    const cut = tar.subarray(0, Math.floor(tar.length / 4096 / 2) * 4096);
    const chunks = await send(r, T(2), cut);
    await expect(
      r.close({
        machine: 'm2',
        transfer: T(2),
        chunks,
        bytes: cut.length,
        sha256: createHash('sha256').update(tar).digest('hex'),
      }),
    ).rejects.toMatchObject({ code: 'IMAGE_TRANSFER_MISMATCH' });
    await new Promise((res) => setTimeout(res, 300));
    expect(await images.resolve(id)).toBeNull();
    // The same cut tar closed with its own count and sha256 (a sender whose save ended early): the
    // load gets a tar that ends at a header boundary, and still nothing is registered.
    await open(r, T(5));
    const again = await send(r, T(5), cut);
    const error = await r
      .close({
        machine: 'm2',
        transfer: T(5),
        chunks: again,
        bytes: cut.length,
        sha256: createHash('sha256').update(cut).digest('hex'),
      })
      .then(
        () => null,
        (e: { code?: string }) => e.code,
      );
    expect(['IMAGE_TRANSFER_FAILED', 'IMAGE_TRANSFER_MISMATCH']).toContain(error);
    expect(await images.resolve(id)).toBeNull();
    expect(await images.resolve(ref)).toBeNull();
  });

  it('the whole tar: the sender’s id under its name; a second open says present', async () => {
    const r = new ImageReceiver(() => images);
    await open(r, T(3));
    const chunks = await send(r, T(3), tar);
    const closed = await r.close({
      machine: 'm2',
      transfer: T(3),
      chunks,
      bytes: tar.length,
      sha256: createHash('sha256').update(tar).digest('hex'),
    });
    expect(closed).toMatchObject({ image_id: id, bytes: tar.length });
    expect(await images.resolve(ref)).toBe(id);
    expect(await open(r, T(4))).toMatchObject({ present: true });
    expect(await r.has({ machine: 'm2', image: ref, image_id: id })).toEqual({ present: true, local_id: id });
  });
});
