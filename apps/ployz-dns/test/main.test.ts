import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openStore, type Store } from '@ployz/store';
import { freePort, type NatsServer, startNats } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dig } from './dig.ts';
import { instanceRecord, machineRecord, releaseRecord } from './records.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';

const run = promisify(execFile);
const MAIN = resolve(import.meta.dirname, '../src/main.ts');
const NODE_ARGS = ['--conditions=ployz-source', MAIN];
const AT = '2026-01-01T00:00:00Z';

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
  it('answers from both workers on one port and stops them all on SIGTERM', { timeout: 90_000 }, async () => {
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
    try {
      await waitFor(
        'both workers listening',
        async () => (output.match(/ployz-dns listening/g) ?? []).length === 2,
        30_000,
      );
      // Different source ports spread over the two sockets; every answer must be right.
      const answers = await Promise.all(
        Array.from({ length: 8 }, () => dig({ host: '127.0.0.1', port: dnsPort }, 'web.shop.ployz.internal')),
      );
      for (const r of answers) expect(r.answer.map((rr) => rr[4])).toEqual(['10.210.3.10']);
      expect((await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).status).toBe(200);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  });
});
