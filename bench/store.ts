/**
 * @ployz/store beside the raw @nats-io client, on the same nats-server, in one run
 * (bench/store.sh builds and calls this).
 *
 * Operations, each measured sequentially (one in flight, like the deploy engine):
 *   kv get     store.machines.getByKey          vs  kv.get + JSON.parse
 *   kv put     store.machines.update (CAS)      vs  kv.update (CAS) of the same JSON
 *   kv create  store.instances.create           vs  kv.create of the same JSON
 *   lease      store.leases.acquire (fresh key) vs  kv.create of the same lease JSON
 * Store and raw alternate in blocks so drift on a shared machine hits both alike.
 *
 * Env: STORE_BENCH_N (default 2000 per op and side), STORE_BENCH_BLOCK (200).
 */
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { Store } from '@ployz/store';
import { fixtures, startNats } from '@ployz/testkit';

const N = Number(process.env.STORE_BENCH_N ?? 2000);
const BLOCK = Number(process.env.STORE_BENCH_BLOCK ?? 200);
const machine = fixtures.machine('m1', { updated_at: '2026-01-01T00:00:00.000Z' });
const instance = (id: string) => fixtures.instance(id);
const lease = (key: string) => fixtures.lease(key, { owner: 'bench' });

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

interface Side {
  name: string;
  samples: number[];
}

async function measure(
  label: string,
  storeOp: (i: number) => Promise<unknown>,
  rawOp: (i: number) => Promise<unknown>,
): Promise<{ label: string; store: Side; raw: Side }> {
  const store: Side = { name: 'store', samples: [] };
  const raw: Side = { name: 'raw', samples: [] };
  // Warm-up, not recorded.
  for (let i = 0; i < 50; i++) {
    await storeOp(N + i);
    await rawOp(N + i);
  }
  for (let start = 0; start < N; start += BLOCK) {
    for (const [side, op] of [
      [store, storeOp],
      [raw, rawOp],
    ] as const) {
      for (let i = start; i < Math.min(N, start + BLOCK); i++) {
        const t = process.hrtime.bigint();
        await op(i);
        side.samples.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }
  }
  return { label, store, raw };
}

const nats = await startNats();
try {
  const scope = { installation: 'bench', authority: 'auth-bench' };
  const store = await Store.fromConnection(await connect({ servers: nats.url }), scope);
  const rawNc = await connect({ servers: nats.url });
  const kvm = new Kvm(rawNc);
  const rawMachines = await kvm.open(store.names.machines);
  const rawInstances = await kvm.open(store.names.instances);
  const rawLocks = await kvm.open(store.names.locks);
  const enc = new TextEncoder();

  // Separate keys for the two sides so their CAS revisions never collide.
  let storeRev = (await store.machines.create(machine)).revision;
  let rawRev = await rawMachines.create('raw-m1', enc.encode(JSON.stringify({ ...machine, id: 'raw-m1' })));

  const results = [];
  results.push(
    await measure(
      'kv get',
      () => store.machines.getByKey('m1'),
      async () => {
        const e = await rawMachines.get('raw-m1');
        return e ? JSON.parse(e.string()) : null;
      },
    ),
  );
  results.push(
    await measure(
      'kv put (CAS)',
      async (i) => {
        storeRev = (
          await store.machines.update(
            { ...machine, updated_at: `2026-01-01T00:00:${String(i % 60).padStart(2, '0')}.000Z` },
            storeRev,
          )
        ).revision;
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
    ),
  );
  results.push(
    await measure(
      'kv create',
      (i) => store.instances.create(instance(`s-${i}`)),
      (i) => rawInstances.create(`shop.web.r-${i}`, enc.encode(JSON.stringify(instance(`r-${i}`)))),
    ),
  );
  results.push(
    await measure(
      'lease acquire',
      (i) => store.leases.acquire(store.deployLockKey(`s${i}`), { owner: 'bench' }),
      (i) =>
        rawLocks.create(`cp.lock.deploy.r${i}`, enc.encode(JSON.stringify(lease(`cp.lock.deploy.r${i}`)))),
    ),
  );

  console.log(`nats-server 2.9 on loopback, N=${N} per op and side, sequential, times in ms`);
  console.log('op              store p50  raw p50  ratio   store p99  raw p99  ratio');
  for (const r of results) {
    const s = [...r.store.samples].sort((a, b) => a - b);
    const w = [...r.raw.samples].sort((a, b) => a - b);
    const row = [
      r.label.padEnd(15),
      pct(s, 50).toFixed(3).padStart(9),
      pct(w, 50).toFixed(3).padStart(8),
      `${(pct(s, 50) / pct(w, 50)).toFixed(2)}x`.padStart(6),
      pct(s, 99).toFixed(3).padStart(11),
      pct(w, 99).toFixed(3).padStart(8),
      `${(pct(s, 99) / pct(w, 99)).toFixed(2)}x`.padStart(6),
    ];
    console.log(row.join('  '));
  }
  console.log('goal: store / raw <= 1.20x');
  await store.close();
  await rawNc.close();
} finally {
  await nats.stop();
}
