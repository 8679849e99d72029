/**
 * The deploy routes before the deploy engine has started (no machine initialised, no NATS): every
 * one answers ENGINE_NOT_READY over the local API, which ployzctl exits 1 for.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalApiClient } from '@ployz/protocol';
import { exitStatus } from '@ployz/types';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../daemon/config.ts';
import { Daemon } from '../daemon/daemon.ts';
import { connectDocker, DockerEngine } from '../runtime/docker.ts';
import { deployPlugin } from './plugin.ts';

let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployzd-not-ready-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('deploy plugin before its engine is ready', () => {
  it('answers ENGINE_NOT_READY (exit status 1), not a store error', async () => {
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), pino({ level: 'silent' }), [
      deployPlugin(),
    ]);
    await daemon.start();
    const local = new LocalApiClient({ socketPath: config.socketPath });
    try {
      const manifest = 'namespace = "demo"\n\n[[services]]\nname = "web"\nimage = "nginx:1"\n';
      await expect(
        local.call('deployPreview', { manifest, filename: 'deploy.toml', format: null, actor: null }),
      ).rejects.toMatchObject({
        code: 'ENGINE_NOT_READY',
        message: expect.stringMatching(/ployzctl status/),
      });
      expect(exitStatus('ENGINE_NOT_READY')).toBe(1);
    } finally {
      await local.close();
      await daemon.stop();
    }
  });
});
