/**
 * @ployz/store beside the raw @nats-io client, on the same nats-server, and the cost of NKey auth
 * (issue 13), in one run (bench/store.sh builds and calls this).
 *
 * Operations, each measured sequentially (one in flight, like the deploy engine):
 *   kv get     store.machines.getByKey          vs  kv.get + JSON.parse
 *   kv put     store.machines.update (CAS)      vs  kv.update (CAS) of the same JSON
 *   kv create  store.instances.create           vs  kv.create of the same JSON
 *   lease      store.leases.acquire (fresh key) vs  kv.create of the same lease JSON
 *   deploy ls  keys of STORE_BENCH_HISTORY deploy statuses + 20 gets (what `deploy ls` reads for
 *              its first page)                   vs  kv.keys + 20 kv.get
 * Sides alternate in blocks so drift on a shared machine hits both alike.
 *
 * Auth: the same store operations on two nats-servers, one open and one with NKey auth (an
 * `authorization { users: [{ nkey, permissions }] }` block with ployzd's permissions, publish and
 * subscribe `>`), each opened with `openStore` (the auth one with `nkeySeed`), plus connect
 * (connect + flush + close; the NKey challenge is signed here).
 *
 * Env: STORE_BENCH_N (default 2000 per op and side), STORE_BENCH_BLOCK (200),
 * STORE_BENCH_HISTORY (10000 deploy statuses), STORE_BENCH_PAGE_N (100 deploy ls pages per side).
 */
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, nkeys } from '@nats-io/transport-node';
import { deployId } from '@ployz/identity';
import { nkeyAuth, openStore, type Store } from '@ployz/store';
import { fixtures, startNats, startNatsCluster } from '@ployz/testkit';

const N = Number(process.env.STORE_BENCH_N ?? 2000);
const BLOCK = Number(process.env.STORE_BENCH_BLOCK ?? 200);
const HISTORY = Number(process.env.STORE_BENCH_HISTORY ?? 10_000);
const PAGE_N = Number(process.env.STORE_BENCH_PAGE_N ?? 100);
const PAGE = 20;
const CONNECT_N = Math.max(20, Math.floor(N / 10));
const machine = fixtures.machine('m1', { updated_at: '2026-01-01T00:00:00.000Z' });
const instance = (id: string) => fixtures.instance(id);
const lease = (key: string) => fixtures.lease(key, { owner: 'bench' });
const scope = { installation: 'bench', authority: 'auth-bench' };
const enc = new TextEncoder();

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

type Op = (i: number) => Promise<unknown>;

interface Result {
  label: string;
  /** One sample list per side, in the order the sides were given. */
  samples: number[][];
}

/** Times `ops` (one per side) `n` times each, alternating sides every BLOCK iterations. */
async function measure(label: string, ops: readonly Op[], n = N): Promise<Result> {
  const samples = ops.map(() => [] as number[]);
  const warm = Math.min(50, Math.max(5, Math.floor(n / 10)));
  for (let i = 0; i < warm; i++) for (const op of ops) await op(n + i);
  const block = Math.min(BLOCK, Math.max(1, Math.floor(n / 10)));
  for (let start = 0; start < n; start += block) {
    for (const [side, op] of ops.entries()) {
      for (let i = start; i < Math.min(n, start + block); i++) {
        const t = process.hrtime.bigint();
        await op(i);
        samples[side]?.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
  }
  return { label, samples };
}

function printTable(title: string, names: [string, string], results: readonly Result[], goal: string): void {
  console.log(title);
  const [a, b] = names;
  console.log(
    `op                 ${`${a} p50`.padStart(10)} ${`${b} p50`.padStart(9)}  ratio  ${`${a} p99`.padStart(10)} ${`${b} p99`.padStart(9)}  ratio      n`,
  );
  for (const r of results) {
    const s = [...(r.samples[0] ?? [])].sort((x, y) => x - y);
    const w = [...(r.samples[1] ?? [])].sort((x, y) => x - y);
    const row = [
      r.label.padEnd(18),
      pct(s, 50).toFixed(3).padStart(10),
      pct(w, 50).toFixed(3).padStart(9),
      `${(pct(s, 50) / pct(w, 50)).toFixed(2)}x`.padStart(6),
      pct(s, 99).toFixed(3).padStart(10),
      pct(w, 99).toFixed(3).padStart(9),
      `${(pct(s, 99) / pct(w, 99)).toFixed(2)}x`.padStart(6),
      String(s.length).padStart(6),
    ];
    console.log(row.join(' '));
  }
  console.log(goal);
}

/** HISTORY committed deploy statuses, one a minute (the keys sort by time, as `deploy ls` needs). */
async function writeHistory(store: Store): Promise<void> {
  const base = Date.UTC(2026, 0, 1);
  let next = 0;
  const writer = async () => {
    for (let i = next++; i < HISTORY; i = next++) {
      const at = new Date(base + i * 60_000).toISOString();
      await store.deployStatus.create(
        fixtures.deployStatus(deployId(base + i * 60_000), {
          namespace: `ns-${i % 20}`,
          state: 'committed',
          step: 9,
          commits: [`c-${i}`],
          started_at: at,
          updated_at: at,
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: 64 }, writer));
}

/** The first page of `deploy ls`: every status key, newest first, the first PAGE records read. */
async function deployPage(store: Store): Promise<number> {
  const ids = (await store.deployStatus.keys()).sort((x, y) => (x < y ? 1 : x > y ? -1 : 0));
  const page = await Promise.all(ids.slice(0, PAGE).map((id) => store.deployStatus.get(id)));
  return page.length;
}

/** The store operations, on one store, with its own CAS revision. */
async function storeOps(store: Store): Promise<[string, Op][]> {
  let rev = (await store.machines.create(machine)).revision;
  return [
    ['kv get', () => store.machines.getByKey('m1')],
    [
      'kv put (CAS)',
      async (i) => {
        rev = (
          await store.machines.update(
            { ...machine, updated_at: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.000Z` },
            rev,
          )
        ).revision;
      },
    ],
    ['kv create', (i) => store.instances.create(instance(`s-${i}`))],
    ['lease acquire', (i) => store.leases.acquire(store.deployLockKey(`s${i}`), { owner: 'bench' })],
  ];
}

/** Commit append and lease acquire (issue 19: R1 beside R3), with fresh ids per call. */
function durableOps(store: Store): Op[] {
  return [
    (i) => store.commits.append(fixtures.commit(`dep-${i}.final`, { deploy_id: `dep-${i}` })),
    (i) => store.leases.acquire(store.deployLockKey(`d${i}`), { owner: 'bench' }),
  ];
}

const open = await startNats();
const cluster = await startNatsCluster();
const user = nkeys.createUser();
const seed = new TextDecoder().decode(user.getSeed());
const authed = await startNats({
  extraConfig: `authorization {\n  users: [\n    { nkey: ${user.getPublicKey()}, permissions: { publish: { allow: [">"] }, subscribe: { allow: [">"] } } }\n  ]\n}\n`,
});
const connections: NatsConnection[] = [];
const stores: Store[] = [];
try {
  // Store vs raw, on the open server.
  const store = await openStore({ servers: open.url, ...scope });
  stores.push(store);
  const rawNc = await connect({ servers: open.url });
  connections.push(rawNc);
  const kvm = new Kvm(rawNc);
  const rawMachines = await kvm.open(store.names.machines);
  const rawInstances = await kvm.open(store.names.instances);
  const rawLocks = await kvm.open(store.names.locks);
  const rawStatus = await kvm.open(store.names.deployStatus);
  let rawRev = await rawMachines.create('raw-m1', enc.encode(JSON.stringify({ ...machine, id: 'raw-m1' })));
  const rawOps: Op[] = [
    async () => {
      const e = await rawMachines.get('raw-m1');
      return e ? JSON.parse(e.string()) : null;
    },
    async (i) => {
      rawRev = await rawMachines.update(
        'raw-m1',
        enc.encode(
          JSON.stringify({
            ...machine,
            id: 'raw-m1',
            updated_at: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.000Z`,
          }),
        ),
        rawRev,
      );
    },
    (i) => rawInstances.create(`shop.web.r-${i}`, enc.encode(JSON.stringify(instance(`r-${i}`)))),
    (i) => rawLocks.create(`cp.lock.deploy.r${i}`, enc.encode(JSON.stringify(lease(`cp.lock.deploy.r${i}`)))),
  ];
  const rawPage = async () => {
    const keys: string[] = [];
    for await (const k of await rawStatus.keys()) keys.push(k);
    keys.sort((x, y) => (x < y ? 1 : x > y ? -1 : 0));
    const page = await Promise.all(
      keys.slice(0, PAGE).map(async (k) => {
        const e = await rawStatus.get(k);
        return e ? JSON.parse(e.string()) : null;
      }),
    );
    return page.length;
  };

  // The same store operations, open server vs NKey auth.
  const authStore = await openStore({ servers: authed.url, nkeySeed: seed, ...scope });
  stores.push(authStore);
  const ops = await storeOps(store);
  const authOps = await storeOps(authStore);
  await writeHistory(store);
  await writeHistory(authStore);

  const vsRaw: Result[] = [];
  for (const [i, [label, op]] of ops.entries()) {
    vsRaw.push(await measure(label, [op, rawOps[i] as Op]));
  }
  vsRaw.push(await measure(`deploy ls (${HISTORY / 1000}k)`, [() => deployPage(store), rawPage], PAGE_N));

  // Fresh keys on each server for the auth table: no record the first table wrote is touched.
  const openOps = await storeOps(
    await openStore({ servers: open.url, installation: 'bench2', authority: 'auth-bench2' }).then((s) => {
      stores.push(s);
      return s;
    }),
  );
  const vsAuth: Result[] = [];
  for (const [i, [label, op]] of openOps.entries()) {
    vsAuth.push(await measure(label, [(authOps[i] as [string, Op])[1], op]));
  }
  vsAuth.push(
    await measure(
      `deploy ls (${HISTORY / 1000}k)`,
      [() => deployPage(authStore), () => deployPage(store)],
      PAGE_N,
    ),
  );
  // A/A control: the same kv get on two stores of the open server; its ratio is the noise.
  vsAuth.push(
    await measure('noise: kv get A/A', [(openOps[0] as [string, Op])[1], (ops[0] as [string, Op])[1]]),
  );
  const connectOnce = (url: string, auth: ReturnType<typeof nkeyAuth>) => async () => {
    const nc = await connect({ servers: url, ...auth });
    await nc.flush();
    await nc.close();
  };
  vsAuth.push(
    await measure(
      'connect',
      [connectOnce(authed.url, nkeyAuth(seed)), connectOnce(open.url, nkeyAuth(undefined))],
      CONNECT_N,
    ),
  );

  // Replicas (issue 19): the standalone R1 store beside a 3-server R3 cluster on loopback.
  const r1 = await openStore({ servers: open.url, installation: 'bench3', authority: 'auth-bench3' });
  stores.push(r1);
  const r3 = await openStore({
    servers: cluster.urls,
    installation: 'bench3',
    authority: 'auth-bench3',
    replicas: 3,
  });
  stores.push(r3);
  const [r1Ops, r3Ops] = [durableOps(r1), durableOps(r3)];
  const vsReplicas: Result[] = [];
  for (const [i, label] of ['commit append', 'lease acquire'].entries()) {
    vsReplicas.push(await measure(label, [r3Ops[i] as Op, r1Ops[i] as Op]));
  }

  const version = store.nc.info?.version ?? 'unknown';
  printTable(
    `nats-server ${version} on loopback, N=${N} per op and side (deploy ls: ${PAGE_N}), sequential, times in ms`,
    ['store', 'raw'],
    vsRaw,
    'goal: store / raw <= 1.20x',
  );
  console.log('');
  printTable(
    `auth (issue 13): the same store operations, open server vs NKey auth (ployzd's permissions), connect n=${CONNECT_N}`,
    ['nkey', 'open'],
    vsAuth,
    'goal: nkey / open within noise (the A/A row: two stores on the open server, same op); connect pays the NKey challenge once per connection',
  );
  console.log('');
  printTable(
    'replicas (issue 19): R3 on a 3-server cluster (loopback) beside the standalone R1 store, times in ms',
    ['R3', 'R1'],
    vsReplicas,
    'R3 pays one raft round (leader + one follower ack) per write; no goal yet',
  );
} finally {
  for (const s of stores) await s.close().catch(() => undefined);
  for (const nc of connections) await nc.close().catch(() => undefined);
  await open.stop();
  await authed.stop();
  await cluster.stop();
}
