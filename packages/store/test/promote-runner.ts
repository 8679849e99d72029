/**
 * Child process for the kill -9 promotion tests: the coordinator. argv: sourceUrl targetUrls ttlMs
 * [holdPhase]. Prints each phase and each progress report as one JSON line (the test kills it
 * midway); with holdPhase it stops once it has printed that phase, lease still renewed, until killed.
 */
import { connect } from '@nats-io/transport-node';
import { promoteStore } from '../src/index.ts';

const [sourceUrl = '', targetUrls = '', ttl = '2000', hold = ''] = process.argv.slice(2);
const source = await connect({ servers: sourceUrl });
await promoteStore({
  source,
  scope: { installation: 'local', authority: 'auth-default' },
  coordinator: 'child',
  members: ['m1', 'm2', 'm3'],
  ttlMs: Number(ttl),
  prepare: () => connect({ servers: targetUrls.split(',') }),
  onPhase: async (phase) => {
    process.stdout.write(`${JSON.stringify({ phase })}\n`);
    if (phase === hold) await new Promise(() => {});
  },
  onProgress: (p) => process.stdout.write(`${JSON.stringify(p)}\n`),
});
process.stdout.write(`${JSON.stringify({ done: true })}\n`);
process.exit(0);
