/**
 * Errors end to end through ployzctl's one `catch` (DaemonCommand): every command, against no
 * daemon, bad input or a daemon that refuses, prints `CODE: message` (never a stack trace) or the
 * JSON error, and exits with the code's status from @ployz/types' exit-status map.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ErrorCode, exitStatus } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = new URL('../bin/run.js', import.meta.url).pathname;
let dir = '';
let nothing = '';
let socket = '';
let manifest = '';
let server: Server;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function ctl(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--conditions=ployz-source', BIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Human output: one `CODE: message` line first, the status of that code, no stack frames. */
function expectHuman(r: Run, code: ErrorCode, status: 1 | 2): void {
  expect(r.stderr.split('\n')[0]).toMatch(new RegExp(`^${code}: \\S`));
  expect(r.code).toBe(status);
  expect(exitStatus(code)).toBe(status);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployzctl-errors-'));
  nothing = join(dir, 'nothing.sock');
  socket = join(dir, 'api.sock');
  manifest = join(dir, 'deploy.toml');
  await writeFile(manifest, 'namespace = "demo"\n\n[[services]]\nname = "web"\nimage = "nginx:1"\n');
  // A daemon that is up but refuses: its deploy engine is not ready, a rollback loses the lease.
  server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url === '/v1/deploy/apply') {
        res.statusCode = 503;
        res.setHeader('content-type', 'application/json');
        return res.end(
          JSON.stringify({
            error: {
              code: 'ENGINE_NOT_READY',
              message: 'the deploy engine is not ready yet; see ployzctl status',
            },
          }),
        );
      }
      if (req.url === '/v1/deploy/rollback') {
        res.setHeader('content-type', 'application/x-ndjson');
        return res.end(
          `${JSON.stringify({
            error: { code: 'DEPLOY_LOCK_HELD', message: 'held by dep-1', details: { state: 'failed' } },
          })}\n`,
        );
      }
      res.statusCode = 404;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('ployzctl errors', () => {
  it('every command against no daemon: DAEMON_UNREACHABLE, exit 1', async () => {
    const commands = [
      ['status'],
      ['machine', 'init'],
      ['machine', 'show'],
      ['machine', 'ls'],
      ['deploy', '-f', manifest],
      ['deploy', 'preview', '-f', manifest],
      ['deploy', 'ls'],
      ['deploy', 'show', 'dep-1'],
      ['deploy', 'rollback', 'dep-1'],
      ['events'],
    ];
    const runs = await Promise.all(commands.map((c) => ctl(...c, '--socket', nothing)));
    runs.forEach((r, i) => {
      expect(r.stderr, commands[i]?.join(' ')).toMatch(/^DAEMON_UNREACHABLE: ployzd does not answer on /);
      expectHuman(r, 'DAEMON_UNREACHABLE', 1);
    });
  });

  it('--json: one error document, or the last NDJSON line for deploy / rollback / events', async () => {
    const [doc, apply, rollback, events] = await Promise.all([
      ctl('deploy', 'ls', '--socket', nothing, '--json'),
      ctl('deploy', '-f', manifest, '--socket', nothing, '--json'),
      ctl('deploy', 'rollback', 'dep-1', '--socket', nothing, '--json'),
      ctl('events', '--socket', nothing, '--json'),
    ]);
    expect(doc.code).toBe(1);
    expect(JSON.parse(doc.stdout)).toEqual({
      error: { code: 'DAEMON_UNREACHABLE', message: expect.any(String), details: expect.any(Object) },
    });
    for (const r of [apply, rollback, events]) {
      expect(r.code).toBe(1);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0] ?? '')).toMatchObject({
        type: 'error',
        error: { code: 'DAEMON_UNREACHABLE' },
      });
    }
  });

  it('a missing manifest is MANIFEST_NOT_FOUND, exit 2, before any request', async () => {
    const missing = join(dir, 'missing.toml');
    const [apply, preview, json] = await Promise.all([
      ctl('deploy', '-f', missing, '--socket', nothing),
      ctl('deploy', 'preview', '-f', missing, '--socket', nothing),
      ctl('deploy', '-f', missing, '--socket', nothing, '--json'),
    ]);
    expectHuman(apply, 'MANIFEST_NOT_FOUND', 2);
    expectHuman(preview, 'MANIFEST_NOT_FOUND', 2);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ type: 'error', error: { code: 'MANIFEST_NOT_FOUND' } });
  });

  it("oclif's flag and argument errors are INVALID_ARGUMENT, exit 2", async () => {
    const [noFile, badInt, noId, unknownFlag, json] = await Promise.all([
      ctl('deploy', '--socket', nothing),
      ctl('deploy', 'ls', '--limit', 'many', '--socket', nothing),
      ctl('deploy', 'rollback', '--socket', nothing),
      ctl('status', '--bogus', '--socket', nothing),
      ctl('deploy', 'show', '--socket', nothing, '--json'),
    ]);
    expectHuman(noFile, 'INVALID_ARGUMENT', 2);
    expect(noFile.stderr).toMatch(/file/);
    expectHuman(badInt, 'INVALID_ARGUMENT', 2);
    expectHuman(noId, 'INVALID_ARGUMENT', 2);
    expectHuman(unknownFlag, 'INVALID_ARGUMENT', 2);
    expect(unknownFlag.stderr).toMatch(/--bogus/);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } });
  });

  it('a daemon whose deploy engine is not ready: ENGINE_NOT_READY, exit 1', async () => {
    const r = await ctl('deploy', '-f', manifest, '--socket', socket);
    expectHuman(r, 'ENGINE_NOT_READY', 1);
    expect(r.stderr).toContain('ENGINE_NOT_READY: the deploy engine is not ready yet; see ployzctl status');
  });

  it('a conflict in a deploy stream: its code, what the deploy left behind, exit 2', async () => {
    const r = await ctl('deploy', 'rollback', 'dep-1', '--socket', socket);
    expectHuman(r, 'DEPLOY_LOCK_HELD', 2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'DEPLOY_LOCK_HELD: held by dep-1',
      'Deploy failed before its first commit: nothing live changed, candidates were removed.',
    ]);
    const json = await ctl('deploy', 'rollback', 'dep-1', '--socket', socket, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      type: 'error',
      error: { code: 'DEPLOY_LOCK_HELD', message: 'held by dep-1', details: { state: 'failed' } },
    });
  });
});
