/**
 * The exec tunnel over a real unix socket: an error before the upgrade is the caller's
 * PloyzError; after it, frames go both ways (stdin echoed back, then the exit frame), and an error
 * thrown once accepted arrives as the last frame.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { PloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFrame, FRAME, type Frame, FrameReader, LocalApiClient, LocalApiServer } from '../src/index.ts';

let dir: string;
let server: LocalApiServer;
let client: LocalApiClient;

/** Every frame until the connection ends. */
function framesOf(socket: Duplex): Promise<Frame[]> {
  const reader = new FrameReader();
  const frames: Frame[] = [];
  return new Promise((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => frames.push(...reader.push(chunk)));
    socket.once('end', () => resolve(frames));
    socket.once('error', reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployz-tunnel-'));
  server = new LocalApiServer();
  server.implementTunnel('exec', async (input, { accept }) => {
    if (input.service === 'nope') throw new PloyzError('SERVICE_UNKNOWN', 'no service nope');
    const socket = accept();
    if (input.service === 'late') throw new PloyzError('NO_RUNNING_INSTANCE', 'it stopped');
    const reader = new FrameReader();
    await new Promise<void>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        for (const frame of reader.push(chunk)) {
          if (frame.kind === FRAME.stdin) socket.write(encodeFrame(FRAME.stdout, frame.payload));
          if (frame.kind === FRAME.eof) resolve();
        }
      });
    });
    socket.end(encodeFrame(FRAME.exit, JSON.stringify({ exit_code: input.command.length })));
  });
  await server.listen(join(dir, 'api.sock'));
  client = new LocalApiClient({ socketPath: join(dir, 'api.sock') });
});

afterAll(async () => {
  await client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const request = (service: string) => ({
  namespace: 'shop',
  service,
  command: ['sh', '-c', 'cat'],
  stdin: true,
});

describe('exec tunnel', () => {
  it('carries stdin frames in and output then the exit frame out', async () => {
    const socket = await client.tunnel('exec', request('web'));
    const frames = framesOf(socket);
    socket.write(encodeFrame(FRAME.stdin, 'hello'));
    socket.write(encodeFrame(FRAME.eof));
    const got = (await frames).map((f) => [f.kind, f.payload.toString()]);
    expect(got).toEqual([
      [FRAME.stdout, 'hello'],
      [FRAME.exit, '{"exit_code":3}'],
    ]);
  });

  it('answers an error before the upgrade as the PloyzError, and one after it as the last frame', async () => {
    await expect(client.tunnel('exec', request('nope'))).rejects.toMatchObject({ code: 'SERVICE_UNKNOWN' });
    const socket = await client.tunnel('exec', request('late'));
    const frames = await framesOf(socket);
    expect(frames.map((f) => f.kind)).toEqual([FRAME.error]);
    expect(JSON.parse(frames[0]?.payload.toString() ?? '')).toMatchObject({ code: 'NO_RUNNING_INSTANCE' });
  });

  it('refuses an input that does not validate before sending it', () => {
    expect(() => client.tunnel('exec', { ...request('web'), command: [] })).toThrow(
      expect.objectContaining({ code: 'API_BAD_REQUEST' }),
    );
  });
});
