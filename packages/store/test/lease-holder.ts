/**
 * Child process for lease tests. argv: url key owner ttlMs mode(hold|exit)
 * Connects, prints `{"ready":true}`, waits for a message on `test.go` (so every racer starts at
 * the same moment), tries the lease, prints the outcome as one JSON line, then holds or exits.
 */
import { connect } from '@nats-io/transport-node';
import { isPloyzError } from '@ployz/types';
import { Store } from '../src/index.ts';

const [url = '', key = '', owner = '', ttl = '1000', mode = 'exit'] = process.argv.slice(2);
const nc = await connect({ servers: url });
const store = await Store.fromConnection(nc, {
  installation: 'local',
  authority: 'auth-default',
  ensure: false,
});
const go = nc.subscribe('test.go', { max: 1 });
await nc.flush();
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const _ of go) break;
try {
  const lease = await store.leases.acquire(key, { owner, ttlMs: Number(ttl) });
  process.stdout.write(`${JSON.stringify({ owner, won: true, nonce: lease.record.nonce })}\n`);
} catch (err) {
  const failure = isPloyzError(err)
    ? { code: err.code, details: err.details ?? null }
    : { code: String(err), details: null };
  process.stdout.write(`${JSON.stringify({ owner, won: false, ...failure })}\n`);
}
if (mode === 'hold') await new Promise(() => {});
await nc.close();
