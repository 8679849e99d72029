/**
 * Disposable-daemon bench (issue 7): while a load generator hits the data plane — the gateway's
 * health endpoint (admin listener on the bridge address), the gateway's published public port and
 * NATS's /healthz — ployzd is killed with -9 and restarted RESTARTS times. Prints the request
 * count, failed requests (goal 0) and containers recreated (goal 0). Exit 1 when a goal is missed.
 *
 * Then the engine row (issue 14): on a dockerd of its own in a netns host, three tenants behind
 * the gateway under a load loop that checks every body; dockerd restarted ENGINE_RESTARTS times
 * (SIGTERM, start on the same data root). Prints requests, failed (goal: only inside the windows),
 * wrong-service responses (goal 0) and each window's length.
 *
 * Everything runs under a unique installation, bridge, subnet, container prefix and state dir and
 * is removed at the end. Images are pinned by id at the start, so a concurrent image rebuild
 * cannot count as drift. Env: RESTARTS (10), CONCURRENCY (per target, 2), SETTLE_MS (300),
 * ENGINE_RESTARTS (3), GATEWAY_REPLACES (10), DAEMON_BENCH_ONLY=daemon|engine|beside (one row only).
 *
 * Then the beside row (issue 20): the gateway replaced GATEWAY_REPLACES times by config changes
 * under load (docs/adr/0014-replace-beside.md); failed requests, goal 0.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort } from '@ployz/testkit';
import { Agent, Client, request } from 'undici';
import { httpLoop, waitServing } from '../e2e/test/beside-load.ts';
import { DaemonHarness } from '../e2e/test/daemon-harness.ts';
import { DeployHarness, helloManifest } from '../e2e/test/deploy-harness.ts';
import { RestartRig, TENANTS, tally, type Window } from '../e2e/test/restart-harness.ts';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESTARTS = Number(process.env.RESTARTS ?? 10);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 2);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 300);
const ENGINE_RESTARTS = Number(process.env.ENGINE_RESTARTS ?? 3);
const GATEWAY_REPLACES = Number(process.env.GATEWAY_REPLACES ?? 10);
const ONLY = process.env.DAEMON_BENCH_ONLY ?? '';
const COMPONENTS = ['networking', 'nats', 'gateway', 'dns'] as const;

async function docker(...args: string[]): Promise<string> {
  return (await run('docker', args, { maxBuffer: 16 << 20 })).stdout.trim();
}

interface Status {
  reconcile: { adopted: number; created: number; recreated: number; problems: number; error: unknown } | null;
  components: { component: string; state: string; container_id: string | null }[];
  nats: { state: string } | null;
}

async function api<T>(socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const client = new Client('http://ployzd', { socketPath });
  try {
    const res = await client.request({
      method,
      path,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const json = (await res.body.json()) as { result?: T; error?: { code: string; message: string } };
    if (json.error) throw new Error(`${json.error.code}: ${json.error.message}`);
    return json.result as T;
  } finally {
    await client.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function daemonRow(): Promise<number> {
  const id = randomBytes(3).toString('hex');
  const inst = `bench-${id}`;
  const prefix = `bench-${id}-`;
  const dir = await mkdtemp(join(tmpdir(), 'ployz-bench-daemon-'));
  const socket = join(dir, 'ployzd.sock');
  const used = await docker(
    'network',
    'inspect',
    '--format',
    '{{range .IPAM.Config}}{{.Subnet}} {{end}}',
    ...(await docker('network', 'ls', '-q')).split('\n'),
  );
  let subnet = '';
  do subnet = `10.214.${20 + Math.floor(Math.random() * 230)}.0/24`;
  while (used.includes(subnet));
  const bridgeIp = subnet.replace(/0\/24$/, '2');
  const gatewayPort = await freePort();
  const wireguardPort = await freePort();
  const images: Record<string, string> = {};
  for (const c of COMPONENTS)
    images[c] = await docker('image', 'inspect', '--format', '{{.Id}}', `ployz/${c}:latest`);

  let proc: ChildProcess | null = null;
  const logs: string[] = [];
  const start = async () => {
    proc = spawn(
      process.execPath,
      [
        '--conditions=ployz-source',
        join(ROOT, 'apps/ployzd/src/main.ts'),
        'run',
        '--state-dir',
        join(dir, 'state'),
        '--socket-path',
        socket,
        '--container-prefix',
        prefix,
        '--bridge-name',
        inst,
        '--subnet',
        subnet,
        '--gateway-port',
        String(gatewayPort),
        '--gateway-host-ip',
        '127.0.0.1',
        '--wireguard-port',
        String(wireguardPort),
        '--image-networking',
        images.networking ?? '',
        '--image-nats',
        images.nats ?? '',
        '--image-gateway',
        images.gateway ?? '',
        '--image-dns',
        images.dns ?? '',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
    for (let i = 0; i < 200; i++) {
      try {
        await api(socket, 'GET', '/v1/status');
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`ployzd did not come up: ${logs.join('')}`);
  };
  const settled = async (): Promise<Status> => {
    for (let i = 0; ; i++) {
      const s = await api<Status>(socket, 'GET', '/v1/status');
      if (s.reconcile && s.nats?.state === 'connected') return s;
      if (i > 600) throw new Error(`never settled: ${JSON.stringify(s)}`);
      await sleep(100);
    }
  };
  const kill9 = async () => {
    const p = proc as ChildProcess | null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };

  try {
    await start();
    await api(socket, 'POST', '/v1/machine/init', { machine_id: 'bench', installation: inst });
    const first = await settled();
    const ids = Object.fromEntries(first.components.map((c) => [c.component, c.container_id]));
    // Wait until every target answers before the load starts.
    const targets = {
      'gateway health': `http://${bridgeIp}:9180/_ployz/health`,
      'gateway public': `http://127.0.0.1:${gatewayPort}/`,
      'nats healthz': `http://${bridgeIp}:8222/healthz`,
    };
    // The public port has no routes here: any HTTP answer below 500 (404 no route) is the gateway serving.
    const ok = (target: string, status: number) =>
      target === 'gateway public' ? status >= 200 && status < 500 : status === 200;
    for (const [name, url] of Object.entries(targets)) {
      for (let i = 0; ; i++) {
        const status = await request(url).then(
          async (r) => {
            await r.body.dump();
            return r.statusCode;
          },
          () => 0,
        );
        if (ok(name, status)) break;
        if (i > 300) throw new Error(`${name} (${url}) never became healthy (last ${status})`);
        await sleep(100);
      }
    }

    const counts = Object.fromEntries(
      Object.keys(targets).map((t) => [
        t,
        { requests: 0, failed: 0, statuses: {} as Record<string, number>, samples: [] as string[] },
      ]),
    );
    let loading = true;
    const dispatcher = new Agent({ keepAliveTimeout: 2000, connections: CONCURRENCY * 4 });
    const loops = Object.entries(targets).flatMap(([name, url]) =>
      Array.from({ length: CONCURRENCY }, async () => {
        const c = counts[name];
        if (!c) return;
        while (loading) {
          let status = 0;
          try {
            const r = await request(url, { dispatcher, headersTimeout: 2000, bodyTimeout: 2000 });
            status = r.statusCode;
            if (ok(name, status)) await r.body.dump();
            else if (c.samples.length < 3) c.samples.push(`${status} ${(await r.body.text()).slice(0, 200)}`);
            else await r.body.dump();
          } catch (error) {
            status = 0;
            if (c.samples.length < 3) c.samples.push(`0 ${String(error)}`);
          }
          c.requests++;
          c.statuses[String(status)] = (c.statuses[String(status)] ?? 0) + 1;
          if (!ok(name, status)) c.failed++;
        }
      }),
    );

    let recreated = 0;
    let changedIds = 0;
    const t0 = Date.now();
    const restartMs: number[] = [];
    const socketMs: number[] = [];
    for (let i = 1; i <= RESTARTS; i++) {
      await sleep(SETTLE_MS);
      await kill9();
      const t = Date.now();
      await start();
      socketMs.push(Date.now() - t);
      const s = await settled();
      restartMs.push(Date.now() - t);
      recreated += (s.reconcile?.recreated ?? 0) + (s.reconcile?.created ?? 0);
      for (const c of s.components) if (c.container_id !== ids[c.component]) changedIds++;
      process.stdout.write(
        `restart ${i}/${RESTARTS}: ${s.reconcile?.adopted} adopted, ${s.reconcile?.recreated} recreated, ${s.reconcile?.created} created in ${restartMs.at(-1)} ms (API up after ${socketMs.at(-1)} ms)\n`,
      );
    }
    await sleep(SETTLE_MS);
    loading = false;
    await Promise.all(loops);
    await dispatcher.close();
    const seconds = (Date.now() - t0) / 1000;
    const total = Object.values(counts).reduce((a, c) => a + c.requests, 0);
    const failed = Object.values(counts).reduce((a, c) => a + c.failed, 0);
    restartMs.sort((a, b) => a - b);
    process.stdout.write(
      `\n${RESTARTS} x (kill -9 ployzd + restart) over ${seconds.toFixed(1)} s, ${CONCURRENCY} client(s) per target\n`,
    );
    for (const [name, c] of Object.entries(counts)) {
      process.stdout.write(
        `  ${name.padEnd(15)} ${String(c.requests).padStart(7)} requests  ${String(c.failed).padStart(4)} failed  statuses ${JSON.stringify(c.statuses)}\n`,
      );
      for (const sample of c.samples) process.stdout.write(`      failed: ${sample.replace(/\s+/g, ' ')}\n`);
    }
    process.stdout.write(
      `requests: ${total}  failed: ${failed} (goal 0)  containers recreated: ${recreated} (goal 0)  container ids changed: ${changedIds}\n`,
    );
    process.stdout.write(
      `daemon restart → adopted & NATS connected: median ${restartMs[Math.floor(restartMs.length / 2)]} ms, max ${restartMs.at(-1)} ms\n`,
    );
    process.stdout.write(
      `${JSON.stringify({ bench: 'daemon-restart', restarts: RESTARTS, requests: total, failed, recreated, changed_ids: changedIds, restart_ms_median: restartMs[Math.floor(restartMs.length / 2)] })}\n`,
    );
    return failed === 0 && recreated === 0 && changedIds === 0 ? 0 : 1;
  } finally {
    await kill9();
    const containers = (await docker('ps', '-aq', '--filter', `label=ployz.installation=${inst}`))
      .split('\n')
      .filter(Boolean);
    if (containers.length) await docker('rm', '-f', ...containers);
    await docker('network', 'rm', inst).catch(() => '');
    await rm(dir, { recursive: true, force: true });
  }
}

/** dockerd restarted ENGINE_RESTARTS times under a body-checking load loop on an engine of its own. */
async function engineRow(): Promise<number> {
  await using rig = await RestartRig.create('bench-engine');
  const load = rig.loadLoop(TENANTS);
  await sleep(1500);
  const windows: Window[] = [];
  for (let i = 1; i <= ENGINE_RESTARTS; i++) {
    const from = performance.now();
    await rig.dockerd.stop();
    await rig.dockerd.start();
    await rig.allServeOwn(120_000);
    windows.push({ from, until: performance.now() });
    process.stdout.write(
      `engine restart ${i}/${ENGINE_RESTARTS}: window ${((performance.now() - from) / 1000).toFixed(1)} s\n`,
    );
    await sleep(2000);
  }
  await load.stop();
  const { wrong, failed, outside, own, lengths } = tally(load.samples, windows);
  process.stdout.write(
    `\n${ENGINE_RESTARTS} x (dockerd SIGTERM + start) under load, ${TENANTS.length} tenants\n` +
      `requests: ${load.samples.length}  own: ${own.length}  failed: ${failed.length} (outside the windows ${outside.length}, goal 0)  wrong service: ${wrong.length} (goal 0)  windows: ${lengths} s\n`,
  );
  for (const s of [...wrong, ...outside].slice(0, 5))
    process.stdout.write(`      ${s.tenant}: ${s.detail}\n`);
  process.stdout.write(
    `${JSON.stringify({ bench: 'daemon-restart-engine', restarts: ENGINE_RESTARTS, requests: load.samples.length, failed: failed.length, failed_outside: outside.length, wrong: wrong.length, windows_s: windows.map((w) => Number(((w.until - w.from) / 1000).toFixed(1))) })}\n`,
  );
  return wrong.length === 0 && outside.length === 0 ? 0 : 1;
}

/**
 * The gateway replaced beside itself GATEWAY_REPLACES times (docs/adr/0014-replace-beside.md):
 * each time a gateway config change and a ployzd restart, under a keep-alive and a
 * connection-per-request load loop on a deployed service. Goal: 0 failed requests.
 */
async function besideRow(): Promise<number> {
  await using h = await DaemonHarness.create();
  await h.startInitialised();
  const d = new DeployHarness(h);
  await d.engineReady();
  const deployed = await d.deploy(await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host })));
  if (deployed.code !== 0) throw new Error(`deploy failed: ${JSON.stringify(deployed.last)}`);
  const target = { host: '127.0.0.1', port: h.gatewayPort, hostHeader: d.host, expect: '(version v1)' };
  await waitServing(target);
  const loops = [httpLoop(target, true), httpLoop(target, false)];
  const replaceMs: number[] = [];
  let beside = 0;
  for (let i = 1; i <= GATEWAY_REPLACES; i++) {
    const from = performance.now();
    await h.kill9();
    h.componentEnv = { gateway: { PLOYZ_GATEWAY_BENCH_ROUND: String(i) } };
    await h.start();
    const s = await h.settledStatus();
    const gw = s.components.find((c) => c.component === 'gateway');
    if (gw?.state === 'recreated' && /started beside/.test(gw.detail ?? '')) beside += 1;
    replaceMs.push(Math.round(performance.now() - from));
    process.stdout.write(
      `gateway replace ${i}/${GATEWAY_REPLACES}: ${gw?.state} in ${replaceMs.at(-1)} ms\n`,
    );
    await sleep(500);
  }
  const [keepAlive, perRequest] = await Promise.all(loops.map((l) => l.stop()));
  const failed = (keepAlive?.failed.length ?? 0) + (perRequest?.failed.length ?? 0);
  const requests = (keepAlive?.ok ?? 0) + (perRequest?.ok ?? 0) + failed;
  process.stdout.write(
    `\n${GATEWAY_REPLACES} x gateway replaced beside (config change + ployzd restart) under load\n` +
      `requests: ${requests}  failed: ${failed} (goal 0)  replaced beside: ${beside}/${GATEWAY_REPLACES}\n`,
  );
  for (const f of [...(keepAlive?.failed ?? []), ...(perRequest?.failed ?? [])].slice(0, 5))
    process.stdout.write(`      ${f}\n`);
  process.stdout.write(
    `${JSON.stringify({ bench: 'daemon-restart-beside', replaces: GATEWAY_REPLACES, requests, failed, failed_keep_alive: keepAlive?.failed.length, failed_per_request: perRequest?.failed.length, beside, replace_ms_median: [...replaceMs].sort((a, b) => a - b)[Math.floor(replaceMs.length / 2)] })}\n`,
  );
  return failed === 0 && beside === GATEWAY_REPLACES ? 0 : 1;
}

const daemon = ONLY === 'engine' || ONLY === 'beside' ? 0 : await daemonRow();
const engine = ONLY === 'daemon' || ONLY === 'beside' ? 0 : await engineRow();
const besideCode = ONLY === 'daemon' || ONLY === 'engine' ? 0 : await besideRow();
process.exitCode = daemon || engine || besideCode;
