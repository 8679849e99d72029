/**
 * One client of the Jepsen-style store check (store-promote.test.ts), run inside a machine's
 * network namespace against that machine's own ployz-nats, as ployzd would be. Until the
 * deadline it loops: append a commit with a fresh id, then try the one shared lease; when won,
 * hold it a little and release it. Every operation is printed as one JSON line when it ends,
 * with the times it was invoked and acknowledged; the test checks the merged history.
 *
 * SIGTERM ends the loop after the operation in flight. With client `reader` it prints instead
 * every stored commit of the namespace (`{"op":"stored",…}`) and exits.
 *
 * argv: servers nkeySeedFile installation client durationMs ttlMs
 */
import { readFile } from 'node:fs/promises';
import { connectStore, type Lease, Store } from '@ployz/store';
import { fixtures } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';

const JEPSEN_LEASE = 'cp.lock.jepsen';
const JEPSEN_NAMESPACE = 'jepsen';

const [servers = '', seedFile = '', installation = '', client = '', duration = '30000', ttl = '3000'] =
  process.argv.slice(2);
const deadline = Date.now() + Number(duration);
const ttlMs = Number(ttl);

const line = (o: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ client, ...o })}\n`);
const codeOf = (err: unknown) => (isPloyzError(err) ? err.code : String(err).slice(0, 120));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const nkeySeed = (await readFile(seedFile, 'utf8')).trim();
const conn = await connectStore({
  servers,
  nkeySeed,
  name: `jepsen-${client}`,
  timeoutMs: 2000,
  maxBackoffMs: 500,
});
// Right after a switch-over or a heal the leaf may not reach JetStream yet: retried for 30 s.
let store: Store | null = null;
for (const until = Date.now() + 30_000; store === null; ) {
  try {
    store = await Store.fromConnection(conn.nc, {
      installation,
      authority: 'auth-default',
      ensure: false,
      requestTimeoutMs: 2000,
    });
  } catch (err) {
    if (Date.now() > until) throw err;
    await sleep(500);
  }
}
if (client === 'reader') {
  // Every sequence read from the stream leader (a message get), not through a consumer: an
  // ephemeral consumer may sit on a replica still catching up and show an older stream.
  const last = await store.commits.lastSeq();
  const seqs = Array.from({ length: last }, (_, i) => i + 1);
  // A read that fails (no leader yet) ends the reader non-zero: the test reads again.
  const read = (seq: number) =>
    store.jsm.streams
      .getMessage(store.commits.stream, { seq })
      .then((m) => (m === null ? null : { seq, commit: m.json<{ id: string; namespace: string }>() }));
  const found: Awaited<ReturnType<typeof read>>[] = [];
  for (let i = 0; i < seqs.length; i += 32)
    found.push(...(await Promise.all(seqs.slice(i, i + 32).map(read))));
  for (const f of found) {
    if (f === null) continue;
    if (f.commit.namespace === JEPSEN_NAMESPACE) line({ op: 'stored', id: f.commit.id, seq: f.seq });
    else line({ op: 'other', id: f.commit.id, seq: f.seq });
  }
  line({ op: 'done', last, read: found.filter((f) => f !== null).length });
  await conn.close();
  process.exit(0);
}
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
});
line({ op: 'ready' });

let n = 0;
while (!stopping && Date.now() < deadline) {
  n++;
  // Deploy ids are dep-<base36>: the client's name and the counter, made unique per client.
  const deployId = `dep-jepsen${client.replace(/[^0-9a-z]/g, '')}x${n.toString(36)}`;
  const id = `${deployId}.final`;
  const appendAt = Date.now();
  try {
    const r = await store.commits.append(
      fixtures.commit(id, { deploy_id: deployId, namespace: JEPSEN_NAMESPACE, services: [] }),
    );
    line({ op: 'append', id, invoked: appendAt, acked: Date.now(), ok: true, seq: r.seq });
  } catch (err) {
    line({ op: 'append', id, invoked: appendAt, ended: Date.now(), ok: false, code: codeOf(err) });
  }
  const acquireAt = Date.now();
  let lease: Lease;
  try {
    lease = await store.leases.acquire(JEPSEN_LEASE, { owner: client, ttlMs, purpose: 'jepsen' });
  } catch (err) {
    line({ op: 'acquire', invoked: acquireAt, ended: Date.now(), ok: false, code: codeOf(err) });
    await sleep(10 + Math.random() * 40);
    continue;
  }
  line({
    op: 'acquire',
    invoked: acquireAt,
    acked: Date.now(),
    ok: true,
    nonce: lease.record.nonce,
    revision: lease.revision,
    expires: Date.parse(lease.record.expires_at),
  });
  await sleep(20 + Math.random() * 130);
  const releaseAt = Date.now();
  try {
    await store.leases.release(lease);
    line({ op: 'release', nonce: lease.record.nonce, invoked: releaseAt, acked: Date.now(), ok: true });
  } catch (err) {
    line({
      op: 'release',
      nonce: lease.record.nonce,
      invoked: releaseAt,
      ended: Date.now(),
      ok: false,
      code: codeOf(err),
    });
  }
}
line({ op: 'done' });
await conn.close();
