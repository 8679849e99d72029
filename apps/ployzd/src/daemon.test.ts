import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCommands, LocalApiClient } from '@ployz/protocol';
import { pino } from 'pino';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
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
  it('mounts plugin routes of the api table, answers status before init, refuses a second daemon, stops in order', async () => {
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
        ctx.implement('deployList', (q) => {
          events.push(`list ${q.namespace ?? '*'}`);
          return [];
        });
        ctx.registerCommands(
          defineCommands({
            start_instance: { request: z.null(), response: z.object({ started: z.boolean() }) },
          }),
          { start_instance: () => ({ started: true }) },
        );
        // A command name the daemon already has is refused.
        expect(() =>
          ctx.registerCommands(defineCommands({ ping: { request: z.null(), response: z.null() } }), {
            ping: () => null,
          }),
        ).toThrow(/registered twice/);
        ctx.implement('events', (_q, { emit }) => {
          emit({ type: 'deploy', n: 1 });
          emit({ type: 'routing', n: 2 });
          return { reason: 'done' };
        });
        events.push('register');
      },
    };
    const logger = pino({ level: 'silent' });
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), logger, [plugin]);
    await daemon.start();
    expect(events).toEqual(['register']);

    expect(await call(config.socketPath, 'GET', '/v1/deploys?namespace=web')).toEqual({
      status: 200,
      body: { result: [] },
    });
    expect(events).toEqual(['register', 'list web']);
    const status = await call(config.socketPath, 'GET', '/v1/status');
    expect(status.body.result).toMatchObject({ initialised: false, machine: null, components: [] });
    expect(await call(config.socketPath, 'GET', '/v1/machine')).toMatchObject({
      status: 409,
      body: { error: { code: 'NOT_INITIALISED' } },
    });
    expect((await call(config.socketPath, 'GET', '/v1/nope')).status).toBe(404);
    // A route of the table nobody implements (deploy preview here) is a NOT_FOUND that says so.
    expect(await call(config.socketPath, 'POST', '/v1/deploy/preview')).toMatchObject({
      status: 404,
      body: { error: { code: 'NOT_FOUND' } },
    });
    const client = new Client('http://ployzd', { socketPath: config.socketPath });
    const streamed = await client.request({ method: 'GET', path: '/v1/events?follow=false' });
    expect(streamed.headers['content-type']).toBe('application/x-ndjson');
    expect(
      (await streamed.body.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { progress: { type: 'deploy', n: 1 } },
      { progress: { type: 'routing', n: 2 } },
      { result: { reason: 'done' } },
    ]);
    await client.close();
    // ployzctl's typed client reads the same daemon.
    const typed = new LocalApiClient({ socketPath: config.socketPath });
    expect(await typed.call('status', {})).toMatchObject({ initialised: false, agent: null });
    await expect(typed.call('machineList', {})).rejects.toMatchObject({ code: 'NOT_INITIALISED' });

    const second = new Daemon(config, new DockerEngine(connectDocker()), logger, []);
    await expect(second.start()).rejects.toThrow(/another ployzd already answers/);

    expect(await daemon.stop()).toEqual(['local-api', 'agent-rpc', 'nats', 'loops']);
    await expect(call(config.socketPath, 'GET', '/v1/status')).rejects.toThrow();
  });
});
