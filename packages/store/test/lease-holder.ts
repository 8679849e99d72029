/**
 * Child process for lease tests: tries to acquire a lease and reports on stdout as one JSON
 * line, then holds (or exits). argv: url key owner ttlMs mode(hold|exit) startAtEpochMs
 */
import { connect } from '@nats-io/transport-node';
import { isPloyzError } from '@ployz/types';
import { Store } from '../src/index.ts';

const [url = '', key = '', owner = '', ttl = '1000', mode = 'exit', startAt = '0'] = process.argv.slice(2);
const nc = await connect({ servers: url });
const store = await Store.fromConnection(nc, {
  installation: 'local',
  authority: 'auth-default',
  ensure: false,
});
const wait = Number(startAt) - Date.now();
if (wait > 0) await new Promise((r) => setTimeout(r, wait));
try {
  const lease = await store.leases.acquire(key, { owner, ttlMs: Number(ttl) });
  process.stdout.write(`${JSON.stringify({ owner, won: true, nonce: lease.record.nonce })}\n`);
} catch (err) {
  process.stdout.write(
    `${JSON.stringify({ owner, won: false, code: isPloyzError(err) ? err.code : String(err), details: isPloyzError(err) ? err.details : null })}\n`,
  );
}
if (mode === 'hold') await new Promise(() => {});
await nc.close();
