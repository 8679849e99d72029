import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineCommands, LocalApiClient } from '@ployz/protocol';
import { pino } from 'pino';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { connectDocker, DockerEngine } from '../runtime/docker.ts';
import { parseDaemonConfig } from './config.ts';
import { Daemon, type DaemonPlugin } from './daemon.ts';

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

const AT = '2026-11-22T00:00:00.000Z';
/** Two lines of the `events` route (@ployz/protocol's EventView), as a plugin emits them. */
const eventLines = [1, 2].map((seq) => ({
  seq,
  type: 'machine_removed' as const,
  at: AT,
  deploy_id: null,
  namespace: null,
  service: null,
  instance: null,
  machine: `m${seq}`,
  event: { type: 'machine_removed' as const, machine_id: `m${seq}`, deploy_id: null, at: AT },
}));

describe('Daemon composition root (real unix socket, no machine yet)', () => {
  it('mounts plugin routes of the api table, answers status before init, refuses a second daemon, shuts down cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployzd-test-'));
    dirs.push(dir);
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const events: string[] = [];
    // A request still being answered when stop() begins (released by the test).
    let arrived!: () => void;
    const inflightArrived = new Promise<void>((r) => {
      arrived = r;
    });
    let releaseInflight!: () => void;
    const release = new Promise<void>((r) => {
      releaseInflight = r;
    });
    const plugin: DaemonPlugin = {
      name: 'deploy',
      register(ctx) {
        ctx.implement('deployList', async (q) => {
          events.push(`list ${q.namespace ?? '*'}`);
          if (q.namespace === 'inflight') {
            arrived();
            await release;
          }
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
          for (const line of eventLines) emit(line);
          return { reason: 'caught_up', last_seq: 2 };
        });
        events.push('register');
      },
    };
    const logger = pino({ level: 'silent' });
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), logger, [plugin]);
    await daemon.start();
    expect(events).toEqual(['register']);
    // The local API is root-only (docs/adr/0011-trust-model.md): owner root, no bits for others,
    // group at most read/write (0660 or stricter).
    const sock = await stat(config.socketPath);
    expect(sock.isSocket()).toBe(true);
    expect(sock.uid).toBe(0);
    expect(sock.mode & 0o7117).toBe(0);

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
      ...eventLines.map((progress) => ({ progress })),
      { result: { reason: 'caught_up', last_seq: 2 } },
    ]);
    await client.close();
    // ployzctl's typed client reads the same daemon.
    const typed = new LocalApiClient({ socketPath: config.socketPath });
    expect(await typed.call('status', {})).toMatchObject({ initialised: false, agent: null });
    await expect(typed.call('machineList', {})).rejects.toMatchObject({ code: 'NOT_INITIALISED' });

    const second = new Daemon(config, new DockerEngine(connectDocker()), logger, []);
    await expect(second.start()).rejects.toThrow(/another ployzd already answers/);

    // Defined shutdown: stop() refuses new requests at once, answers the one in flight, then
    // removes the socket, so the next daemon starts on the same path.
    const inflight = call(config.socketPath, 'GET', '/v1/deploys?namespace=inflight');
    await inflightArrived;
    let stopped = false;
    const stopping = daemon.stop().then(() => {
      stopped = true;
    });
    await expect(call(config.socketPath, 'GET', '/v1/status')).rejects.toThrow();
    expect(stopped).toBe(false);
    releaseInflight();
    expect(await inflight).toEqual({ status: 200, body: { result: [] } });
    await stopping;
    await expect(stat(config.socketPath)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(call(config.socketPath, 'GET', '/v1/status')).rejects.toThrow();
    const next = new Daemon(config, new DockerEngine(connectDocker()), logger, []);
    await next.start();
    expect((await call(config.socketPath, 'GET', '/v1/status')).status).toBe(200);
    await next.stop();
  });
});
