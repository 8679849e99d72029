/**
 * Child process for the kill -9 migration test. argv: sourceUrl targetUrls(comma-separated).
 * Prints every progress report as one JSON line (the test kills it midway), `{"done":true}` last.
 */
import { connect } from '@nats-io/transport-node';
import { migrateStore } from '../src/index.ts';

const [sourceUrl = '', targetUrls = ''] = process.argv.slice(2);
const source = await connect({ servers: sourceUrl });
const target = await connect({ servers: targetUrls.split(',') });
await migrateStore({
  source,
  target,
  scope: { installation: 'local', authority: 'auth-default' },
  onProgress: (p) => process.stdout.write(`${JSON.stringify(p)}\n`),
});
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
await source.close();
await target.close();
