import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { Daemon, type DaemonPlugin } from './daemon.ts';
import { parseDaemonConfig } from './daemon-config.ts';
import { connectDocker, DockerEngine } from './docker-engine.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function call(socketPath: string, method: 'GET' | 'POST', path: string) {
  const client = new Client('http://ployzd', { socketPath });
  try {
    const res = await client.request({ method, path });
    return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
  } finally {
    await client.close();
  }
}

describe('Daemon composition root (real unix socket, no machine yet)', () => {
  it('mounts plugin routes, answers status before init, refuses a second daemon, stops in order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-test-'));
    dirs.push(dir);
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const events: string[] = [];
    const plugin: DaemonPlugin = {
      name: 'deploy',
      register(ctx) {
        ctx.registerRoute('GET', '/v1/deploys', () => ({ deploys: [] }));
        ctx.registerRpc('start_instance', () => ({ started: true }));
        ctx.registerRoute('POST', '/v1/stream', () =>
          (async function* () {
            yield { type: 'progress', n: 1 };
            yield { type: 'result', ok: true };
          })(),
        );
        events.push('register');
      },
    };
    const logger = pino({ level: 'silent' });
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), logger, [plugin]);
    await daemon.start();
    expect(events).toEqual(['register']);

    expect(await call(config.socketPath, 'GET', '/v1/deploys')).toEqual({
      status: 200,
      body: { result: { deploys: [] } },
    });
    const status = await call(config.socketPath, 'GET', '/v1/status');
    expect(status.body.result).toMatchObject({ initialised: false, machine: null, components: [] });
    expect(await call(config.socketPath, 'GET', '/v1/machine')).toMatchObject({
      status: 409,
      body: { error: { code: 'NOT_INITIALISED' } },
    });
    expect((await call(config.socketPath, 'GET', '/v1/nope')).status).toBe(404);
    const client = new Client('http://ployzd', { socketPath: config.socketPath });
    const streamed = await client.request({ method: 'POST', path: '/v1/stream' });
    expect(streamed.headers['content-type']).toBe('application/x-ndjson');
    expect(
      (await streamed.body.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { type: 'progress', n: 1 },
      { type: 'result', ok: true },
    ]);
    await client.close();

    const second = new Daemon(config, new DockerEngine(connectDocker()), logger, []);
    await expect(second.start()).rejects.toThrow(/another ployzd already answers/);

    expect(await daemon.stop()).toEqual(['local-api', 'agent-rpc', 'nats', 'loops']);
    await expect(call(config.socketPath, 'GET', '/v1/status')).rejects.toThrow();
  });
});
