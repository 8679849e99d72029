/**
 * ployz-dns beside dnsmasq, in one run (bench/dns.sh builds and calls this).
 *
 * 1. Throughput and latency: the same names (A records, TTL 0) served by dnsmasq (hosts file) and
 *    by ployz-dns (a fixed routing snapshot), measured with dnsperf on loopback: a saturating run
 *    (QPS, average latency) and a fixed-rate run (latency at a load both sustain).
 * 2. Freshness: ployz-dns following a real nats-server; time from appending a routing event to
 *    the first DNS answer that shows it (p50 / p99 / max).
 *
 * Env: DNS_BENCH_SECONDS (default 8), DNS_BENCH_ROUNDS (2), DNS_BENCH_RATE (10000),
 *      DNS_BENCH_CLIENTS (4), DNS_BENCH_EVENTS (200), DNS_BENCH_SKIP_THROUGHPUT / _FRESHNESS=1,
 *      DNS_BENCH_NODE_ARGS (extra node flags for ployz-dns).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '@ployz/store';
import { freePort, startNats } from '@ployz/testkit';
import type { InstanceRecord, MachineRecord, ReleaseRecord } from '@ployz/types';

const run = promisify(execFile);
const SECONDS = Number(process.env.DNS_BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.DNS_BENCH_ROUNDS ?? 2);
const RATE = Number(process.env.DNS_BENCH_RATE ?? 10000);
const CLIENTS = Number(process.env.DNS_BENCH_CLIENTS ?? 4);
const EVENTS = Number(process.env.DNS_BENCH_EVENTS ?? 200);
/** Node flags for ployz-dns, as its image runs it (apps/ployz-dns/Dockerfile); DNS_BENCH_NODE_ARGS adds more. */
const NODE_ARGS = [
  '--max-semi-space-size=8',
  ...(process.env.DNS_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
];
const DNS_MAIN = resolve(import.meta.dirname, '../apps/ployz-dns/dist/main.js');
const AT = '2026-01-01T00:00:00Z';
const REV = 'rev-aaaaaaaaaaaaaaaa';

const children: ChildProcess[] = [];
function cleanup(): void {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
}
process.on('exit', cleanup);

function machine(): MachineRecord {
  return {
    id: 'm1',
    public_key: `${'A'.repeat(43)}=`,
    overlay_ip: 'fd00::1',
    subnet: '10.210.0.0/24',
    endpoints: ['127.0.0.1:51820'],
    region: 'local',
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: AT,
    updated_at: AT,
  };
}

function instance(namespace: string, service: string, slot: number, id: string, ip: string): InstanceRecord {
  return {
    id,
    namespace,
    service,
    slot,
    machine: 'm1',
    revision: REV,
    deploy: 'dep-1',
    container_id: null,
    ip,
    ip6: null,
    ports: { http: 8080 },
    state: 'running',
    ready: true,
    draining: false,
    error: null,
    created_at: AT,
    updated_at: AT,
  };
}

function release(namespace: string, service: string, instances: InstanceRecord[]): ReleaseRecord {
  return {
    namespace,
    service,
    revision: REV,
    deploy: 'dep-1',
    slots: instances.map((i) => ({ slot: i.slot, machine: 'm1', instance: i.id })),
    updated_at: AT,
  };
}

/** 4 namespaces × 50 services × 2 instances: 200 service names + 400 instance names. */
function fixture() {
  const releases: ReleaseRecord[] = [];
  const instances: InstanceRecord[] = [];
  const hosts: string[] = [];
  const queries: string[] = [];
  let n = 0;
  for (let ns = 0; ns < 4; ns++) {
    for (let svc = 0; svc < 50; svc++) {
      const namespace = `ns${ns}`;
      const service = `svc${svc}`;
      const own = [0, 1].map((slot) => {
        n += 1;
        return instance(
          namespace,
          service,
          slot,
          `${namespace}-${service}-${slot}`,
          `10.${100 + ns}.${svc}.${10 + slot}`,
        );
      });
      instances.push(...own);
      releases.push(release(namespace, service, own));
      const serviceName = `${service}.${namespace}.ployz.internal`;
      queries.push(`${serviceName} A`);
      for (const i of own) {
        hosts.push(`${i.ip} ${serviceName}`, `${i.ip} ${i.id}.${serviceName}`);
        queries.push(`${i.id}.${serviceName} A`);
      }
    }
  }
  return {
    snapshot: { seq: 0, machines: [machine()], revisions: [], releases, instances },
    hosts,
    queries,
    n,
  };
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms`);
}

async function digShort(port: number, name: string): Promise<string[]> {
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(port),
    name,
    'A',
    '+short',
    '+tries=1',
    '+time=1',
  ]);
  return stdout.trim().split('\n').filter(Boolean).sort();
}

interface PerfResult {
  qps: number;
  avgMs: number;
  lost: number;
  sent: number;
}

async function dnsperf(port: number, queryFile: string, extra: string[]): Promise<PerfResult> {
  const { stdout } = await run(
    'dnsperf',
    [
      '-s',
      '127.0.0.1',
      '-p',
      String(port),
      '-d',
      queryFile,
      '-l',
      String(SECONDS),
      '-c',
      String(CLIENTS),
      ...extra,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const number = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? Number.NaN);
  return {
    qps: number(/Queries per second:\s+([\d.]+)/),
    avgMs: number(/Average Latency \(s\):\s+([\d.]+)/) * 1000,
    lost: number(/Queries lost:\s+(\d+)/),
    sent: number(/Queries sent:\s+(\d+)/),
  };
}

function spawnLogged(command: string, args: string[]): ChildProcess {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.on('exit', (code, signal) => {
    if (code !== 0 && code !== null && signal === null)
      process.stderr.write(`${command} exited ${code}: ${stderr}\n`);
  });
  children.push(child);
  return child;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

async function throughput(dir: string): Promise<void> {
  const { snapshot, hosts, queries, n } = fixture();
  const snapshotFile = join(dir, 'snapshot.json');
  const hostsFile = join(dir, 'hosts');
  const queryFile = join(dir, 'queries.txt');
  await writeFile(snapshotFile, JSON.stringify(snapshot));
  await writeFile(hostsFile, `${hosts.join('\n')}\n`, { mode: 0o644 });
  await writeFile(queryFile, `${queries.join('\n')}\n`);

  const [echoPort, dnsmasqPort, ployzPort, ployz2Port, adminPort, admin2Port] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  spawnLogged('dnsmasq', [
    '--keep-in-foreground',
    '--conf-file=/dev/null',
    `--port=${dnsmasqPort}`,
    '--listen-address=127.0.0.1',
    '--bind-interfaces',
    '--no-resolv',
    '--no-hosts',
    `--addn-hosts=${hostsFile}`,
    '--local=/ployz.internal/',
    '--local-ttl=0',
    '--cache-size=10000',
    '--pid-file=',
    '--user=root',
  ]);
  const ployzArgs = (port: number, admin: number, workers: number) => [
    ...NODE_ARGS,
    DNS_MAIN,
    '--snapshot-file',
    snapshotFile,
    '--listen',
    `127.0.0.1:${port}`,
    '--admin',
    `127.0.0.1:${admin}`,
    '--upstream',
    '127.0.0.1:9',
    '--workers',
    String(workers),
    '--log-level',
    'warn',
  ];
  // The ceiling of Node's UDP socket layer: reply to each query with its own bytes (QR set).
  spawnLogged(process.execPath, [
    '-e',
    `const s=require('node:dgram').createSocket({type:'udp4',lookup:(h,o,cb)=>cb(null,h,4)});s.on('message',(m,r)=>{m[2]|=0x80;s.send(m,r.port,r.address)});s.bind(${echoPort},'127.0.0.1')`,
  ]);
  spawnLogged(process.execPath, ployzArgs(ployzPort, adminPort, 1));
  spawnLogged(process.execPath, ployzArgs(ployz2Port, admin2Port, 2));
  await waitUntil(
    'dnsmasq',
    async () => (await digShort(dnsmasqPort, 'svc0.ns0.ployz.internal')).length === 2,
  );
  await waitUntil('ployz-dns', async () => (await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).ok);
  await waitUntil(
    'ployz-dns ×2',
    async () => (await fetch(`http://127.0.0.1:${admin2Port}/_ployz/health`)).ok,
  );
  // Both workers of the second server must be listening before we measure it.
  await new Promise((r) => setTimeout(r, 1500));

  // Same names, same answers from all.
  for (const name of ['svc7.ns2.ployz.internal', 'ns2-svc7-1.svc7.ns2.ployz.internal']) {
    const expected = JSON.stringify(await digShort(dnsmasqPort, name));
    for (const port of [ployzPort, ployz2Port]) {
      const got = JSON.stringify(await digShort(port, name));
      if (got !== expected) throw new Error(`answers differ for ${name}: ${expected} vs ${got}`);
    }
  }

  const targets = [
    { name: 'node echo', port: echoPort },
    { name: 'dnsmasq', port: dnsmasqPort },
    { name: 'ployz-dns', port: ployzPort },
    { name: 'ployz-dns ×2', port: ployz2Port },
  ] as const;
  type Target = (typeof targets)[number]['name'];
  console.log(
    `names: ${queries.length} (${n} instances), TTL 0, A records; dnsperf ${CLIENTS} clients, ${SECONDS} s per run, ${ROUNDS} rounds`,
  );
  console.log(
    "  (node echo = a bare Node UDP socket echoing each query: the ceiling of Node's socket layer;",
  );
  console.log('   ployz-dns = one process; ployz-dns ×2 = --workers 2 sharing the port with SO_REUSEPORT)');
  const results = new Map<Target, PerfResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const target of targets) {
      const r = await dnsperf(target.port, queryFile, ['-q', '100']);
      results.get(target.name)?.push(r);
      console.log(
        `  round ${round} ${target.name.padEnd(12)} saturating: ${r.qps.toFixed(0).padStart(7)} QPS  avg ${r.avgMs.toFixed(3)} ms  lost ${r.lost}/${r.sent}`,
      );
    }
  }
  const fixed = new Map<Target, PerfResult>();
  for (const target of targets) {
    const r = await dnsperf(target.port, queryFile, ['-q', '100', '-Q', String(RATE)]);
    fixed.set(target.name, r);
    console.log(
      `  fixed ${RATE}/s ${target.name.padEnd(12)}: ${r.qps.toFixed(0).padStart(7)} QPS  avg ${r.avgMs.toFixed(3)} ms  lost ${r.lost}/${r.sent}`,
    );
  }
  const qps = (name: Target) => median((results.get(name) ?? []).map((r) => r.qps));
  const avg = (name: Target) => median((results.get(name) ?? []).map((r) => r.avgMs));
  console.log('\nsummary (median of rounds, saturating; goal ≥ 1.0× dnsmasq QPS, avg ≤ 1 ms):');
  for (const target of targets) {
    const ratio = qps(target.name) / qps('dnsmasq');
    const ofCeiling = qps(target.name) / qps('node echo');
    console.log(
      `  ${target.name.padEnd(12)} ${qps(target.name).toFixed(0).padStart(7)} QPS  avg ${avg(target.name).toFixed(3)} ms  ${ratio.toFixed(2)}× dnsmasq  ${ofCeiling.toFixed(2)}× node echo  | at ${RATE}/s avg ${fixed.get(target.name)?.avgMs.toFixed(3)} ms`,
    );
  }
  cleanup();
}

/** Sends one A query and resolves with the addresses in the answer. */
function queryOnce(port: number, name: string): Promise<string[]> {
  return new Promise((resolvePromise, reject) => {
    const socket = createSocket('udp4');
    const labels = name.split('.').flatMap((l) => [Buffer.from([l.length]), Buffer.from(l)]);
    const header = Buffer.from([0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const msg = Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error('query timed out'));
    }, 1000);
    socket.on('message', (response) => {
      clearTimeout(timer);
      socket.close();
      const count = response.readUInt16BE(6);
      const ips: string[] = [];
      let offset = msg.length;
      for (let i = 0; i < count; i++) {
        const rdLength = response.readUInt16BE(offset + 10);
        if (rdLength === 4) ips.push([...response.subarray(offset + 12, offset + 16)].join('.'));
        offset += 12 + rdLength;
      }
      resolvePromise(ips);
    });
    socket.send(msg, port, '127.0.0.1');
  });
}

async function freshness(): Promise<void> {
  await using nats = await startNats();
  const scope = { installation: 'bench', authority: 'auth-bench' };
  const store = await openStore({ servers: nats.url, ...scope });
  const [dnsPort, adminPort] = [await freePort(), await freePort()];
  const child = spawnLogged(process.execPath, [
    ...NODE_ARGS,
    DNS_MAIN,
    '--nats-url',
    nats.url,
    '--installation',
    scope.installation,
    '--authority',
    scope.authority,
    '--listen',
    `127.0.0.1:${dnsPort}`,
    '--admin',
    `127.0.0.1:${adminPort}`,
    '--upstream',
    '127.0.0.1:9',
    '--log-level',
    'warn',
  ]);
  try {
    await waitUntil(
      'ployz-dns on NATS',
      async () => (await fetch(`http://127.0.0.1:${adminPort}/_ployz/health`)).ok,
    );
    const first = instance('fresh', 'web', 0, 'web-0', '10.77.0.1');
    await store.routing.append({ type: 'machine_upserted', machine: machine(), deploy_id: null, at: AT });
    await store.routing.append({
      type: 'release_committed',
      release: release('fresh', 'web', [first]),
      deploy_id: null,
      at: AT,
    });
    await store.routing.append({ type: 'instance_upserted', instance: first, deploy_id: null, at: AT });
    const name = 'web.fresh.ployz.internal';
    await waitUntil('first event', async () => (await queryOnce(dnsPort, name))[0] === '10.77.0.1');
    const delays: number[] = [];
    for (let i = 1; i <= EVENTS; i++) {
      const ip = `10.77.${i >> 8}.${i & 0xff || 1}`;
      const started = performance.now();
      await store.routing.append({
        type: 'instance_upserted',
        instance: { ...first, ip },
        deploy_id: null,
        at: AT,
      });
      for (;;) {
        const ips = await queryOnce(dnsPort, name);
        if (ips[0] === ip) break;
        if (performance.now() - started > 5000) throw new Error(`event ${i} not visible after 5 s`);
      }
      delays.push(performance.now() - started);
    }
    console.log(
      `\nfreshness: routing event appended to NATS → visible in a DNS answer (${EVENTS} events, real nats-server)`,
    );
    console.log(
      `  p50 ${percentile(delays, 50).toFixed(2)} ms  p99 ${percentile(delays, 99).toFixed(2)} ms  max ${Math.max(...delays).toFixed(2)} ms (goal p99 ≤ 20 ms)`,
    );
  } finally {
    child.kill('SIGTERM');
    await store.close();
  }
}

const dir = await mkdtemp(join(tmpdir(), 'ployz-dns-bench-'));
try {
  if (process.env.DNS_BENCH_SKIP_THROUGHPUT !== '1') await throughput(dir);
  if (process.env.DNS_BENCH_SKIP_FRESHNESS !== '1') await freshness();
} finally {
  cleanup();
  await rm(dir, { recursive: true, force: true });
}
