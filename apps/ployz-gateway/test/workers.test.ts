/**
 * `--workers 2` on real processes: both workers serve one port (SO_REUSEPORT), the admin
 * listener answers for both; SIGKILL of one worker under load fails only the requests of the
 * connections it held, the other worker's connections never notice, and the slot is refilled.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@ployz/testkit';
import type { RoutingSnapshot } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instance, machine, release, revision, startBackend } from './harness.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;

interface Status {
  workers: number;
  workers_answering: number;
  worker_restarts: number;
  per_worker: { worker: number; pid: number | null; loaded?: boolean }[];
}

function getText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The pid of the process holding the server side of the client connection from `clientPort`. */
function serverPid(gatewayPort: number, clientPort: number, pids: number[]): number | undefined {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  let inode: string | undefined;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[1]?.endsWith(`:${hex(gatewayPort)}`) && f[2]?.endsWith(`:${hex(clientPort)}`)) inode = f[9];
    }
  }
  if (inode === undefined) return undefined;
  for (const pid of pids) {
    try {
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
        } catch {
          // fd closed meanwhile
        }
      }
    } catch {
      // process gone
    }
  }
  return undefined;
}

/** One keep-alive client connection sending GETs back to back until stopped or failed. */
class LoopClient {
  readonly socket: net.Socket;
  ok = 0;
  failures = 0;
  #buffer = '';
  #stopped = false;
  #done: () => void = () => undefined;
  readonly finished = new Promise<void>((resolve) => {
    this.#done = resolve;
  });

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('connect', () => this.#send());
    this.socket.on('data', (d: Buffer) => this.#read(d.toString('latin1')));
    const fail = () => {
      if (!this.#stopped) this.failures += 1;
      this.#stopped = true;
      this.#done();
    };
    this.socket.on('error', fail);
    this.socket.on('close', fail);
  }

  get localPort(): number | undefined {
    return this.socket.localPort;
  }

  #send(): void {
    if (!this.#stopped) this.socket.write('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n');
  }

  #read(text: string): void {
    this.#buffer += text;
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(this.#buffer.slice(0, end))?.[1] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      const status = Number(this.#buffer.slice(9, 12));
      this.#buffer = this.#buffer.slice(end + 4 + length);
      if (status === 200) this.ok += 1;
      else this.failures += 1;
      this.#send();
    }
  }

  stop(): Promise<void> {
    this.#stopped = true;
    this.socket.destroy();
    return this.finished;
  }
}

describe('ployz-gateway --workers 2 (real processes)', () => {
  let dir: string;
  let backend: Awaited<ReturnType<typeof startBackend>>;
  let gateway: ChildProcess;
  let port: number;
  let admin: number;
  let stdout = '';
  const logLines = () =>
    stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const status = async () => JSON.parse((await getText(admin, '/_ployz/status')).body) as Status;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ployz-gw-workers-'));
    backend = await startBackend('b1', (_req, res) => setTimeout(() => res.end('hello\n'), 2));
    const i = instance('b1-0', 'b1', 0, backend.port);
    const snapshot: RoutingSnapshot = {
      seq: 1,
      machines: [machine()],
      revisions: [revision('b1', [{ hostnames: ['example.com'] }])],
      releases: [release('b1', [i])],
      instances: [i],
    };
    await writeFile(join(dir, 'snapshot.json'), JSON.stringify(snapshot));
    [port, admin] = await Promise.all([freePort(), freePort()]);
    gateway = spawn(
      process.execPath,
      [
        '--conditions=ployz-source',
        // upstream/connection.ts has an enum, which type stripping alone does not run.
        '--experimental-transform-types',
        '--no-warnings',
        MAIN,
        '--workers',
        '2',
        '--snapshot-file',
        join(dir, 'snapshot.json'),
        '--listen-host',
        '127.0.0.1',
        '--http-port',
        String(port),
        '--admin-port',
        String(admin),
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    gateway.stderr?.resume();
    gateway.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    await until('both workers fresh', async () =>
      (await getText(admin, '/_ployz/health')).status === 200 ? true : undefined,
    );
  });

  afterAll(async () => {
    if (gateway.exitCode === null && gateway.signalCode === null) gateway.kill('SIGKILL');
    await backend[Symbol.asyncDispose]();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves one port from both workers; admin labels every metric by worker', async () => {
    const s = await status();
    expect(s.workers).toBe(2);
    expect(s.workers_answering).toBe(2);
    const pids = s.per_worker.map((w) => w.pid as number);
    expect(new Set(pids).size).toBe(2);
    // Connections land on both workers (the kernel spreads them over the two listening sockets).
    const clients = Array.from({ length: 16 }, () => new LoopClient(port));
    await until('every client answered', async () => (clients.every((c) => c.ok > 0) ? true : undefined));
    const owners = new Set(clients.map((c) => serverPid(port, c.localPort as number, pids)));
    expect(owners).toEqual(new Set(pids));
    await Promise.all(clients.map((c) => c.stop()));
    const metrics = (await getText(admin, '/metrics')).body;
    expect(metrics).toMatch(
      /ployz_gateway_requests_total\{worker="0",route="example\.com",status="200"\} \d+/,
    );
    expect(metrics).toMatch(
      /ployz_gateway_requests_total\{worker="1",route="example\.com",status="200"\} \d+/,
    );
    expect(metrics).toMatch(
      /ployz_gateway_upstream_pool_requests_total\{worker="0",backend="127\.0\.0\.1:\d+"\} \d+/,
    );
    expect(metrics).toContain('ployz_gateway_worker_up{worker="1"} 1');
    // One HELP/TYPE per family, whatever the number of workers.
    expect(metrics.match(/# TYPE ployz_gateway_requests_total /g)?.length).toBe(1);
  });

  it('a killed worker fails only its own connections; the other keeps serving; the slot comes back', async () => {
    const before = await status();
    const pids = before.per_worker.map((w) => w.pid as number);
    const clients = Array.from({ length: 16 }, () => new LoopClient(port));
    await until('every client answered', async () => (clients.every((c) => c.ok > 0) ? true : undefined));
    const owner = new Map(clients.map((c) => [c, serverPid(port, c.localPort as number, pids)]));
    const victim = pids[0] as number;
    const onVictim = clients.filter((c) => owner.get(c) === victim);
    const onSurvivor = clients.filter((c) => owner.get(c) !== victim);
    expect(onVictim.length).toBeGreaterThan(0);
    expect(onSurvivor.length).toBeGreaterThan(0);

    process.kill(victim, 'SIGKILL');
    await Promise.all(onVictim.map((c) => c.finished));
    const atKill = new Map(onSurvivor.map((c) => [c, c.ok]));
    // The survivor's connections keep being answered after the kill, without a failure.
    await until('the survivor serving on', async () =>
      onSurvivor.every((c) => c.ok > (atKill.get(c) as number) + 20) ? true : undefined,
    );
    for (const c of onSurvivor) expect(c.failures).toBe(0);
    // Each of the victim's connections lost at most its one in-flight request.
    for (const c of onVictim) expect(c.failures).toBe(1);

    const after = await until('the slot refilled', async () => {
      const s = await status();
      return s.worker_restarts === 1 && s.workers_answering === 2 ? s : undefined;
    });
    const replacement = after.per_worker[0]?.pid as number;
    expect(replacement).not.toBe(victim);
    expect(after.per_worker[1]?.pid).toBe(pids[1]);
    expect((await getText(admin, '/_ployz/health')).status).toBe(200);
    // New connections reach the replacement too, and every one is answered.
    const fresh = Array.from({ length: 16 }, () => new LoopClient(port));
    await until('every new client answered', async () => (fresh.every((c) => c.ok > 0) ? true : undefined));
    const freshOwners = new Set(
      fresh.map((c) => serverPid(port, c.localPort as number, [replacement, pids[1] as number])),
    );
    expect(freshOwners).toContain(replacement);
    await Promise.all([...clients, ...fresh].map((c) => c.stop()));
    for (const c of fresh) expect(c.failures).toBe(0);
    // The primary said so, as a pino line, from the pid that was started (it re-executed in place).
    expect(logLines()).toContainEqual(
      expect.objectContaining({ level: 50, pid: gateway.pid, worker: 'primary', slot: 0, workerPid: victim }),
    );
  });

  it('SIGTERM drains every worker and the primary exits 0', async () => {
    const pids = (await status()).per_worker.map((w) => w.pid as number);
    const exited = new Promise<number | null>((r) => gateway.once('exit', (code) => r(code)));
    gateway.kill('SIGTERM');
    expect(await exited).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
