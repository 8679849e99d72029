import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openStore, type Store } from '@ployz/store';
import { freePort, type NatsServer, startNats } from '@ployz/testkit';
import dns2 from 'dns2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from './dig.ts';
import { instanceRecord, machineRecord, releaseRecord } from './records.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

const { Packet } = dns2;
const run = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '../src/main.ts');
const NODE_ARGS = ['--conditions=ployz-source', MAIN];
const AT = '2026-01-01T00:00:00Z';

/** An A query for `name` with this ID, encoded by dns2. */
function aQuery(id: number, name: string): Buffer {
  const packet = new Packet();
  packet.header.id = id;
  packet.header.rd = 1;
  packet.questions.push(new Packet.Question({ name, type: Packet.TYPE.A, class: Packet.CLASS.IN }));
  return packet.toBuffer();
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms`);
}

describe('the ployz-dns binary', () => {
  it('prints its version and help, and rejects bad configuration with a code and no stack', async () => {
    const version = await run(process.execPath, [...NODE_ARGS, '--version']);
    expect(version.stdout).toMatch(/^ployz-dns \d+\.\d+\.\d+\n$/);
    const help = await run(process.execPath, [...NODE_ARGS, '--help']);
    expect(help.stdout).toContain('--upstream-timeout-ms');
    const bad = await run(process.execPath, [...NODE_ARGS, '--listen', 'dns.example:53']).catch(
      (e: unknown) => e,
    );
    expect(bad).toMatchObject({ code: 2 });
    const stderr = (bad as { stderr: string }).stderr;
    expect(stderr).toContain('CONFIG_INVALID');
    expect(stderr).toContain('listen');
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe('the ployz-dns binary on a real nats-server', () => {
  let nats: NatsServer;
  let store: Store;
  let upstream: TestUpstream;
  let child: ChildProcess;
  let dnsPort: number;
  let adminPort: number;
  const scope = { installation: 'dnstest', authority: 'auth-dns' };
  const web0 = instanceRecord('shop', 'web', 0, { id: 'web-0', ip: '10.210.3.10', ports: { http: 80 } });

  beforeAll(async () => {
    nats = await startNats();
    store = await openStore({ servers: nats.url, ...scope });
    upstream = await startUpstream({ 'example.test': '192.0.2.9' });
    // Records written before ployz-dns starts: it must load them from the snapshot.
    await store.routing.append({
      type: 'machine_upserted',
      machine: machineRecord(),
      deploy_id: null,
      at: AT,
    });
    await store.machines.create(machineRecord());
    await store.instances.create(web0);
    await store.releases.create(releaseRecord('shop', 'web', [web0]));
    await store.routing.append({ type: 'instance_upserted', instance: web0, deploy_id: null, at: AT });
    [dnsPort, adminPort] = [await freePort(), await freePort()];
    child = spawn(
      process.execPath,
      [
        ...NODE_ARGS,
        '--listen',
        `127.0.0.1:${dnsPort}`,
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--upstream',
        `${upstream.host}:${upstream.port}`,
        '--log-level',
        'info',
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          PLOYZ_NATS_URL: nats.url,
          PLOYZ_INSTALLATION: scope.installation,
          PLOYZ_AUTHORITY: scope.authority,
        },
      },
    );
    await waitFor('health', async () => (await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).ok);
  });
  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await store?.close();
    await nats?.stop();
    await upstream?.close();
  });

  const server = () => ({ host: '127.0.0.1', port: dnsPort });

  it('serves the stored records, then routing events as they are appended', async () => {
    const first = await dig(server(), 'web.shop.ployz.internal');
    expect(first.answer.map((rr) => rr[4])).toEqual(['10.210.3.10']);
    const web1 = instanceRecord('shop', 'web', 1, { id: 'web-1', ip: '10.210.3.11' });
    await store.routing.append({ type: 'instance_upserted', instance: web1, deploy_id: null, at: AT });
    await store.routing.append({
      type: 'release_committed',
      release: releaseRecord('shop', 'web', [web0, web1]),
      deploy_id: null,
      at: AT,
    });
    await waitFor(
      'the new instance in DNS',
      async () => (await dig(server(), 'web.shop.ployz.internal')).answer.length === 2,
      5000,
    );
    await store.routing.append({ type: 'instance_removed', instance_id: 'web-0', deploy_id: null, at: AT });
    await waitFor(
      'the removed instance gone',
      async () => {
        const r = await dig(server(), 'web.shop.ployz.internal');
        return r.answer.length === 1 && r.answer[0]?.[4] === '10.210.3.11';
      },
      5000,
    );
    const forwarded = await dig(server(), 'example.test');
    expect(forwarded.answer[0]?.[4]).toBe('192.0.2.9');
    const status = (await (await fetch(`http://127.0.0.1:${adminPort}/_ployz/status`)).json()) as {
      freshness: { appliedSeq: number; stale: boolean };
    };
    expect(status.freshness.appliedSeq).toBe(await store.routing.lastSeq());
    expect(status.freshness.stale).toBe(false);
  });

  it('keeps serving the last good view while NATS is down, and says so', async () => {
    await nats.kill();
    await waitFor(
      'stale status',
      async () => {
        const s = (await (await fetch(`http://127.0.0.1:${adminPort}/_ployz/status`)).json()) as {
          freshness: { stale: boolean };
        };
        return s.freshness.stale;
      },
      10_000,
    );
    const r = await dig(server(), 'web.shop.ployz.internal');
    expect(r.answer.map((rr) => rr[4])).toEqual(['10.210.3.11']);
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    expect(metrics).toContain('ployz_dns_view_stale 1');
    await nats.restart();
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = await exited;
    expect(code).toBe(0);
  });
});

describe('the ployz-dns binary without NATS', () => {
  it('forwards names outside the zone and answers SERVFAIL inside it until a view loads', async () => {
    await using upstream = await startUpstream({ 'example.test': '192.0.2.9' });
    const [dnsPort, adminPort, natsPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      [
        ...NODE_ARGS,
        '--nats-url',
        `nats://127.0.0.1:${natsPort}`,
        '--listen',
        `127.0.0.1:${dnsPort}`,
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--upstream',
        `${upstream.host}:${upstream.port}`,
        '--log-level',
        'silent',
      ],
      { stdio: 'ignore' },
    );
    try {
      await waitFor(
        'admin',
        async () => (await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).status === 503,
      );
      const server = { host: '127.0.0.1', port: dnsPort };
      expect((await dig(server, 'example.test')).answer[0]?.[4]).toBe('192.0.2.9');
      expect((await dig(server, 'web.shop.ployz.internal')).status).toBe('SERVFAIL');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
  });
});

describe('the ployz-dns binary with --workers 2', () => {
  it('answers from each of two workers on one port (one frozen at a time), stops both on SIGTERM', {
    timeout: 90_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployz-dns-workers-'));
    const snapshotFile = join(dir, 'snapshot.json');
    const web0 = instanceRecord('shop', 'web', 0, { id: 'web-0', ip: '10.210.3.10' });
    await writeFile(
      snapshotFile,
      JSON.stringify({
        seq: 3,
        machines: [machineRecord()],
        releases: [releaseRecord('shop', 'web', [web0])],
        instances: [web0],
      }),
    );
    const [dnsPort, adminPort] = [await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      [
        ...NODE_ARGS,
        '--snapshot-file',
        snapshotFile,
        '--listen',
        `127.0.0.1:${dnsPort}`,
        '--admin',
        `127.0.0.1:${adminPort}`,
        '--workers',
        '2',
        '--upstream',
        '127.0.0.1:9',
        '--log-level',
        'info',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    /** A worker this test froze (SIGSTOP), to thaw whatever happens. */
    let stopped: number | null = null;
    try {
      await waitFor(
        'both workers listening',
        async () => (output.match(/ployz-dns listening/g) ?? []).length === 2,
        30_000,
      );
      // Each worker logs its own pid and index (worker 0 serves the admin listener).
      const pids = new Map<number, number>();
      for (const line of output.split('\n')) {
        if (!line.includes('"ployz-dns listening"')) continue;
        const entry = JSON.parse(line) as { pid: number; worker: number };
        pids.set(entry.worker, entry.pid);
      }
      const second = pids.get(1);
      expect(pids.get(0)).toBeGreaterThan(0);
      expect(second).toBeGreaterThan(0);
      if (second === undefined) return;
      const firstWorkerQueries = async () =>
        Number(
          /^ployz_dns_queries_total (\d+)$/m.exec(
            await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text(),
          )?.[1],
        );
      const baseline = await firstWorkerQueries();
      // Worker 1 frozen: what reaches its socket waits there, so every answer that comes while it
      // is stopped is worker 0's. Each query leaves from a socket (source port) of its own, which
      // the kernel hashes over the two workers' sockets (all 32 on one: odds 2 in 2^32).
      const sent = 32;
      const answers: (Buffer | null)[] = Array.from({ length: sent }, () => null);
      const sockets = Array.from({ length: sent }, () => createSocket('udp4'));
      stopped = second;
      process.kill(second, 'SIGSTOP');
      try {
        for (const [i, socket] of sockets.entries()) {
          socket.on('message', (msg) => {
            answers[i] = msg;
          });
          socket.send(aQuery(i, 'web.shop.ployz.internal'), dnsPort, '127.0.0.1');
        }
        const answered = () => answers.filter((a) => a !== null).length;
        // Worker 0 is done when it has answered all it received (and received no more since).
        let settled = 0;
        let last = -1;
        await waitFor('worker 0 answering its share', async () => {
          const received = (await firstWorkerQueries()) - baseline;
          settled = received === answered() && received === last ? settled + 1 : 0;
          last = received;
          return settled >= 3;
        });
        const byFirst = answered();
        expect(byFirst, 'answers from worker 0 while worker 1 is stopped').toBeGreaterThan(0);
        expect(byFirst, 'answers from worker 0 while worker 1 is stopped').toBeLessThan(sent);
        process.kill(second, 'SIGCONT');
        stopped = null;
        await waitFor('worker 1 answering the rest', async () => answered() === sent);
        // Worker 0 took no more: the other sent - byFirst answers are worker 1's.
        expect((await firstWorkerQueries()) - baseline).toBe(byFirst);
        for (const answer of answers) {
          const decoded = Packet.parse(answer ?? Buffer.alloc(0));
          expect(decoded.answers.map((rr) => rr.address)).toEqual(['10.210.3.10']);
        }
      } finally {
        for (const socket of sockets) socket.close();
      }
      expect((await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).status).toBe(200);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (stopped !== null) process.kill(stopped, 'SIGCONT');
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
