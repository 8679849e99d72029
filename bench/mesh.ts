/**
 * What the mesh costs (issue 18): two machines of a local fleet (`scripts/fleet.sh up 2`, fleet
 * MESH_BENCH_FLEET: netns machines with their own dockerd, ployzd, data plane and wg0 on
 * wireguard-go), measured with wrk in one run:
 *
 *   container → container   one HTTP server program (node, in ployz/hello), three paths to it:
 *     raw veth      m1's netns → a host-network server in m2's netns, over the LAN (veth, bridge,
 *                   veth): what the machines' own link gives, no Docker, no WireGuard
 *     same machine  a client container → a server container, both on m1's workload bridge
 *     mesh          a client container on m1 → a server container on m2, by container IP (m1's
 *                   bridge → wg0 → m2's bridge)
 *   each: latency at one connection (p50/p99), req/s at MESH_BENCH_CONNECTIONS connections, and
 *   MB/s of 1 MiB bodies at 4 connections; ratios mesh / raw veth and mesh / same machine.
 *   wrk runs in the client's network namespace (nsenter --net=/proc/<pid>/ns/net).
 *
 *   gateway   `hello` deployed with one replica; the host's wrk through the gateway of the machine
 *             that runs it (local) and through the other machine's gateway (cross-machine: gateway
 *             → wg0 → instance), p50/p99 at one connection and req/s at MESH_BENCH_CONNECTIONS.
 *
 * Everything shares this machine's cores (both fleets' processes, wireguard-go, wrk): a ratio is
 * more telling than an absolute number. A fleet that was already up is reused and left up; one the
 * bench made is removed at the end.
 *
 * Each figure is the median of MESH_BENCH_ROUNDS rounds with the paths interleaved.
 *
 * Env: MESH_BENCH_SECONDS (4, per wrk run), MESH_BENCH_ROUNDS (3), MESH_BENCH_CONNECTIONS (32),
 * MESH_BENCH_FLEET (8).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SECONDS = Number(process.env.MESH_BENCH_SECONDS ?? 4);
const ROUNDS = Number(process.env.MESH_BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.MESH_BENCH_CONNECTIONS ?? 32);
const FLEET = process.env.MESH_BENCH_FLEET ?? '8';
const STATE =
  process.env.PLOYZ_FLEET_DIR ?? (FLEET === '0' ? '/run/ployz-fleet' : `/run/ployz-fleet-${FLEET}`);
const PORT = 8080;
const HOST_PORT = 8081;
const HOSTNAME = 'mesh-bench.localhost';
const BULK_BYTES = 1 << 20;
const env = { ...process.env, PLOYZ_FLEET: FLEET };

async function fleet(...args: string[]): Promise<string> {
  return (
    await run('bash', [join(ROOT, 'scripts/fleet.sh'), ...args], { env, maxBuffer: 16 << 20 })
  ).stdout.trim();
}

const mdocker = (m: string, ...args: string[]) => fleet('docker', m, ...args);

/** GET / answers `ok`; GET /bulk answers BULK_BYTES of zeros. Same program on every path. */
const SERVER = `const b=Buffer.alloc(${BULK_BYTES});require('http').createServer((q,s)=>s.end(q.url==='/bulk'?b:'ok')).listen(+process.argv[1])`;

/** A detached container of ployz/hello running `entrypoint args…` on `network`; its id. */
async function container(m: string, name: string, network: string, entrypoint: string[]): Promise<string> {
  await mdocker(m, 'rm', '-f', name).catch(() => '');
  const [command = 'true', ...args] = entrypoint;
  return mdocker(
    m,
    'run',
    '-d',
    '--name',
    name,
    '--network',
    network,
    '--entrypoint',
    command,
    'ployz/hello:latest',
    ...args,
  );
}

/** The server on `network` (`host`: the machine's own netns); its container IP ('' on host). */
async function server(m: string, name: string, network: string, port: number): Promise<string> {
  await container(m, name, network, ['node', '-e', SERVER, String(port)]);
  if (network === 'host') return '';
  return mdocker(m, 'inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name);
}

/** A container that only holds a network namespace on `network`; its PID on the host. */
async function client(m: string, name: string, network: string): Promise<number> {
  await container(m, name, network, ['sleep', 'infinity']);
  return Number(await mdocker(m, 'inspect', '-f', '{{.State.Pid}}', name));
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value);
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function toMBs(value: string): number {
  const m = /^([\d.]+)(B|KB|MB|GB)$/.exec(value);
  if (!m) return Number.NaN;
  const scale = { B: 1 / (1 << 20), KB: 1 / 1024, MB: 1, GB: 1024 }[m[2] as 'B' | 'KB' | 'MB' | 'GB'];
  return Number(m[1]) * scale;
}

interface Wrk {
  rps: number;
  mbs: number;
  p50: number;
  p99: number;
  errors: number;
}

/** wrk in the network namespace at `netns` (a path), or in this one when null. */
async function wrk(
  netns: string | null,
  url: string,
  connections: number,
  headers: string[] = [],
): Promise<Wrk> {
  const args = [`-t${Math.min(connections, 2)}`, `-c${connections}`, `-d${SECONDS}s`, '--latency'];
  for (const h of headers) args.push('-H', h);
  args.push(url);
  const { stdout } = netns
    ? await run('nsenter', [`--net=${netns}`, '--', 'wrk', ...args], { maxBuffer: 1 << 20 })
    : await run('wrk', args, { maxBuffer: 1 << 20 });
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? Number.NaN),
    mbs: toMBs(/Transfer\/sec:\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    p50: toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    p99: toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

interface Path {
  name: string;
  netns: string | null;
  url: string;
  headers?: string[];
}

interface Row {
  latency: Wrk;
  load: Wrk;
  bulk: Wrk | null;
}

async function once(p: Path, bulk: boolean): Promise<Row> {
  return {
    latency: await wrk(p.netns, p.url, 1, p.headers),
    load: await wrk(p.netns, p.url, CONNECTIONS, p.headers),
    bulk: bulk ? await wrk(p.netns, `${p.url}bulk`, 4, p.headers) : null,
  };
}

const median = (values: number[]) =>
  values.slice().sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;

function medianWrk(runs: Wrk[]): Wrk {
  return {
    rps: median(runs.map((r) => r.rps)),
    mbs: median(runs.map((r) => r.mbs)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
  };
}

/**
 * ROUNDS rounds with the paths interleaved in each (a burst of load from elsewhere on this shared
 * machine falls on every path alike); each figure is the median over the rounds, errors the sum.
 */
async function measure(paths: Path[], bulk: boolean): Promise<Row[]> {
  for (const p of paths) await wrk(p.netns, p.url, 1, p.headers); // warm-up: JIT, ARP, WireGuard handshake
  const runs: Row[][] = paths.map(() => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, p] of paths.entries()) runs[i]?.push(await once(p, bulk));
  }
  return runs.map((rs) => ({
    latency: medianWrk(rs.map((r) => r.latency)),
    load: medianWrk(rs.map((r) => r.load)),
    bulk: bulk ? medianWrk(rs.flatMap((r) => (r.bulk ? [r.bulk] : []))) : null,
  }));
}

async function waitAnswer(netns: string | null, url: string, headers: string[] = []): Promise<void> {
  const args = ['-fsS', '-m', '2', ...headers.flatMap((h) => ['-H', h]), url];
  for (let i = 0; ; i++) {
    const ok = await (netns
      ? run('nsenter', [`--net=${netns}`, '--', 'curl', ...args])
      : run('curl', args)
    ).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (i > 150) throw new Error(`${url} does not answer from ${netns ?? 'the host'}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const f = (v: number, digits = 2) => (Number.isNaN(v) ? '-' : v.toFixed(digits));
const x = (a: number, b: number) => `${f(a / b)}×`;

function table(rows: [string, Row][]): void {
  console.log(
    `${'path'.padEnd(34)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}${'req/s'.padStart(9)}${'p99 ms'.padStart(9)}${'MB/s'.padStart(8)}${'errors'.padStart(8)}`,
  );
  console.log(
    `${''.padEnd(34)}${'(1 connection)'.padStart(18)}${`(${CONNECTIONS} connections)`.padStart(18)}${'(1 MiB)'.padStart(8)}`,
  );
  for (const [name, r] of rows) {
    const errors = r.latency.errors + r.load.errors + (r.bulk?.errors ?? 0);
    console.log(
      `${name.padEnd(34)}${f(r.latency.p50, 3).padStart(9)}${f(r.latency.p99, 3).padStart(9)}${f(r.load.rps, 0).padStart(9)}${f(r.load.p99).padStart(9)}${(r.bulk ? f(r.bulk.mbs, 0) : '-').padStart(8)}${String(errors).padStart(8)}`,
    );
  }
}

function ratios(name: string, a: Row, b: Row): void {
  const parts = [
    `p50 ${x(a.latency.p50, b.latency.p50)}`,
    `p99 ${x(a.latency.p99, b.latency.p99)}`,
    `req/s ${x(a.load.rps, b.load.rps)}`,
  ];
  if (a.bulk && b.bulk) parts.push(`MB/s ${x(a.bulk.mbs, b.bulk.mbs)}`);
  console.log(`  ${name.padEnd(32)}${parts.join('  ')}`);
}

async function main(): Promise<void> {
  const reuse = existsSync(STATE);
  const t0 = Date.now();
  await fleet('up', '2');
  console.log(
    `fleet ${FLEET}: 2 machines ${reuse ? '(already up, reused)' : `up in ${((Date.now() - t0) / 1000).toFixed(0)} s`}`,
  );
  const dir = await mkdtemp(join(tmpdir(), 'ployz-mesh-bench-'));
  try {
    const m1Net = `/var/run/netns/pzf${FLEET}-m1`;
    const lan2 = `10.234.${FLEET}.2`;
    const [remote, local] = [
      await server('m2', 'mesh-bench-server', 'ployz', PORT),
      await server('m1', 'mesh-bench-server', 'ployz', PORT),
    ];
    await server('m2', 'mesh-bench-host', 'host', HOST_PORT);
    const clientNet = `/proc/${await client('m1', 'mesh-bench-client', 'ployz')}/ns/net`;
    const paths: Path[] = [
      { name: 'raw veth (m1 netns → m2 netns)', netns: m1Net, url: `http://${lan2}:${HOST_PORT}/` },
      { name: 'same machine (m1 bridge)', netns: clientNet, url: `http://${local}:${PORT}/` },
      { name: 'mesh (m1 → wg0 → m2)', netns: clientNet, url: `http://${remote}:${PORT}/` },
    ];
    for (const p of paths) await waitAnswer(p.netns, p.url);
    const measured = await measure(paths, true);
    const rows = paths.map((p, i): [string, Row] => [p.name, measured[i] as Row]);
    console.log(
      `\ncontainer → container: wrk -d${SECONDS}s, median of ${ROUNDS} interleaved rounds, one node HTTP server program on every path`,
    );
    table(rows);
    const [raw, same, mesh] = rows.map(([, r]) => r) as [Row, Row, Row];
    console.log('ratios (mesh ÷ other; latency above 1× is slower, req/s and MB/s below 1× are slower)');
    ratios('mesh / raw veth', mesh, raw);
    ratios('mesh / same machine', mesh, same);

    // Through the gateway: one replica, served by its own machine's gateway and by the other's.
    const manifest = join(dir, 'hello.toml');
    await writeFile(
      manifest,
      `namespace = "meshbench"\n\n[[services]]\nname = "hello"\nimage = "ployz/hello:latest"\nports = { http = 8080 }\nenv = { PORT = "8080" }\n\n[[services.routes]]\nhttp = { hostnames = ["${HOSTNAME}"], path = "/" }\n\n[services.readiness]\nhttp = { path = "/healthz" }\ninterval = "100ms"\n\n[services.placement]\nreplicas = 1\n`,
    );
    await fleet('ctl', 'm1', 'deploy', '-f', manifest);
    const on = (await mdocker('m1', 'ps', '-q', '--filter', 'label=ployz.namespace=meshbench')) ? 'm1' : 'm2';
    const other = on === 'm1' ? 'm2' : 'm1';
    const headers = [`Host: ${HOSTNAME}`];
    const gw = { local: await fleet('gw', on), cross: await fleet('gw', other) };
    await waitAnswer(null, gw.local, headers);
    await waitAnswer(null, gw.cross, headers);
    const gwPaths: Path[] = [
      { name: `local (gw ${on} → instance on ${on})`, netns: null, url: gw.local, headers },
      { name: `cross-machine (gw ${other} → wg0 → ${on})`, netns: null, url: gw.cross, headers },
    ];
    const gwMeasured = await measure(gwPaths, false);
    const gwRows = gwPaths.map((p, i): [string, Row] => [p.name, gwMeasured[i] as Row]);
    console.log(
      `\nthrough the gateway: host → a machine's gateway → ployz/hello, wrk -d${SECONDS}s, median of ${ROUNDS} rounds`,
    );
    table(gwRows);
    ratios('cross-machine / local', gwRows[1]?.[1] as Row, gwRows[0]?.[1] as Row);
    await fleet('ctl', 'm1', 'namespace', 'rm', 'meshbench').catch(() => '');
  } finally {
    for (const [m, name] of [
      ['m1', 'mesh-bench-server'],
      ['m1', 'mesh-bench-client'],
      ['m2', 'mesh-bench-server'],
      ['m2', 'mesh-bench-host'],
    ] as const)
      await mdocker(m, 'rm', '-f', name).catch(() => '');
    await rm(dir, { recursive: true, force: true });
    if (!reuse) await fleet('down');
  }
}

await main();
