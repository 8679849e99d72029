#!/usr/bin/env node
/**
 * The entry. A process started by the user or ployzd, and every worker, runs launch.ts (settings,
 * then the gateway). A primary is that same process re-executed in place (same pid, same command
 * line, its plan in the env: workers.ts `becomePrimary`): it loads only what supervising needs —
 * cluster, the admin listener, the merge of the workers' answers — and none of zod, the settings
 * schema, the routing follower or the proxy (issue 22: they were ~25 MB of RSS per primary).
 */
import cluster from 'node:cluster';
import { runPrimary, takePrimaryPlan } from './workers.ts';

async function main(): Promise<number> {
  const plan = cluster.isPrimary ? takePrimaryPlan(process.env) : undefined;
  if (plan !== undefined) return runPrimary(plan);
  const { launch } = await import('./launch.ts');
  return launch();
}

main().then(
  (code) => {
    process.exitCode = code;
    // A cluster worker's IPC channel keeps it alive: leave explicitly once main is done.
    if (cluster.isWorker) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`INTERNAL: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
    if (cluster.isWorker) process.exit(1);
  },
);
