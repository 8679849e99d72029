#!/usr/bin/env node
/**
 * ployz-dns entry point: parse config once, follow the routing projection, serve DNS and the
 * admin listener, shut down cleanly on SIGTERM/SIGINT.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { FileSnapshotFeed, LazyStoreFeed } from '@ployz/routing';
import { PloyzError, type RoutingFeed } from '@ployz/types';
import { type Logger, pino } from 'pino';
import { HELP, parseCli } from './config.ts';
import { parseResolvConf, type Upstream } from './forwarder.ts';
import { startDnsService } from './service.ts';

/** ../package.json is the app's package.json both in the repo (src/, dist/) and in its image (/app). */
function version(): string {
  try {
    const raw: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    if (typeof raw === 'object' && raw !== null && 'version' in raw) return String(raw.version);
  } catch {
    // fall through
  }
  return 'unknown';
}

function errorText(error: unknown): string {
  if (error instanceof PloyzError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

async function main(): Promise<number> {
  let action: ReturnType<typeof parseCli>;
  try {
    action = parseCli(process.argv.slice(2), process.env);
  } catch (error) {
    process.stderr.write(`ployz-dns: ${errorText(error)}\n`);
    return 2;
  }
  if (action.kind === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (action.kind === 'version') {
    process.stdout.write(`ployz-dns ${version()}\n`);
    return 0;
  }
  const config = action.config;
  const workerIndex = cluster.isWorker ? Number(process.env.PLOYZ_DNS_WORKER_INDEX ?? 0) : 0;
  const log =
    config.workers > 1
      ? pino({
          name: 'ployz-dns',
          level: config.logLevel,
          base: { pid: process.pid, worker: cluster.isPrimary ? 'primary' : workerIndex },
        })
      : pino({ name: 'ployz-dns', level: config.logLevel });
  if (config.workers > 1 && config.listen.some((l) => l.port === 0)) {
    process.stderr.write('ployz-dns: CONFIG_INVALID: --workers > 1 needs explicit listen ports (not 0)\n');
    return 2;
  }
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config.workers, log);

  let upstreams: Upstream[] = config.upstreams;
  if (upstreams.length === 0) {
    try {
      upstreams = parseResolvConf(readFileSync(config.resolvConf, 'utf8'));
    } catch (error) {
      log.warn(
        { path: config.resolvConf, err: errorText(error) },
        'cannot read resolv.conf; names outside the zone will SERVFAIL',
      );
    }
  }
  // Never forward to ourselves: that would loop until the timeout.
  upstreams = upstreams.filter((u) => !config.listen.some((l) => l.host === u.host && l.port === u.port));
  if (upstreams.length === 0) log.warn('no upstream resolvers; names outside the zone will SERVFAIL');

  let storeFeed: LazyStoreFeed | null = null;
  let feed: RoutingFeed;
  try {
    if (config.snapshotFile !== undefined) {
      feed = await FileSnapshotFeed.load(config.snapshotFile);
    } else {
      // Opened on first use; until NATS answers the follower retries and reports "not loaded".
      storeFeed = new LazyStoreFeed({
        servers: config.natsUrl,
        nkeySeed: config.natsNkeySeed,
        nkeySeedFile: config.natsNkeySeedFile,
        installation: config.installation,
        authority: config.authority,
        name: 'ployz-dns',
        identity: 'dns',
      });
      feed = storeFeed;
    }
  } catch (error) {
    log.fatal({ err: errorText(error) }, 'cannot start');
    return 2;
  }

  let lastStale: boolean | null = null;
  let service: Awaited<ReturnType<typeof startDnsService>>;
  try {
    service = await startDnsService({
      feed,
      listen: config.listen,
      // With several workers, the first one serves the admin listener (all follow the same feed).
      admin: workerIndex === 0 ? config.admin : null,
      reusePort: config.workers > 1 || config.startWaitMs > 0,
      startWaitMs: config.startWaitMs,
      adminAltPort: config.adminAltPort,
      upstreams,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
      cache: { maxEntries: config.cacheMaxEntries, maxTtlSeconds: config.cacheMaxTtl },
      tcp: { messageMs: config.tcpMessageTimeoutMs, maxPerSource: config.tcpMaxPerSource },
      onError: (error, context) =>
        log.warn({ err: errorText(error), context }, 'routing feed problem; serving the last good view'),
      onUpdate: (table, freshness) => {
        if (lastStale !== freshness.stale) {
          lastStale = freshness.stale;
          log.info(
            { seq: table.seq, names: table.size, stale: freshness.stale, reason: freshness.reason },
            'DNS view updated',
          );
        } else {
          log.debug({ seq: table.seq, names: table.size }, 'DNS view updated');
        }
      },
    });
  } catch (error) {
    log.fatal(
      { err: errorText(error), listen: config.listen, admin: config.admin },
      'cannot bind the DNS or admin listeners: another process holds the address, or it is not on this host; change --listen / --admin',
    );
    await storeFeed?.close();
    return 1;
  }
  log.info(
    {
      dns: service.dnsAddresses,
      admin: service.adminAddress,
      upstreams,
      source: config.snapshotFile ?? config.natsUrl,
    },
    'ployz-dns listening',
  );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // A worker whose primary is gone (killed) must not linger holding the port.
    if (cluster.isWorker) process.once('disconnect', () => stop('primary gone'));
  });
  await service.close();
  await storeFeed?.close();
  log.info('stopped');
  return 0;
}

/**
 * Primary of a multi-worker ployz-dns: forks the workers (each a full ployz-dns sharing the ports
 * with SO_REUSEPORT), relays SIGTERM/SIGINT, and exits non-zero if a worker dies on its own so
 * the supervisor (Docker) restarts the whole set.
 */
async function runPrimary(count: number, log: Logger<never>): Promise<number> {
  let stopping = false;
  const workers = Array.from({ length: count }, (_, index) =>
    cluster.fork({ ...process.env, PLOYZ_DNS_WORKER_INDEX: String(index) }),
  );
  log.info({ workers: count }, 'ployz-dns primary started workers');
  return new Promise<number>((resolve) => {
    let alive = workers.length;
    let code = 0;
    const stop = (signal: NodeJS.Signals) => {
      stopping = true;
      for (const worker of workers) if (!worker.isDead()) worker.process.kill(signal);
    };
    for (const worker of workers) {
      worker.on('exit', (exitCode, signal) => {
        alive -= 1;
        if (!stopping) {
          log.error({ pid: worker.process.pid, exitCode, signal }, 'a DNS worker died; stopping the others');
          code = 1;
          stop('SIGTERM');
        } else if (exitCode !== 0) {
          code = 1;
        }
        if (alive === 0) resolve(code);
      });
    }
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGTERM'));
  });
}

main().then(
  (code) => {
    process.exitCode = code;
    // A cluster worker's IPC channel keeps it alive: leave explicitly once main is done.
    if (cluster.isWorker) process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`ployz-dns: ${errorText(error)}\n`);
    process.exitCode = 1;
    if (cluster.isWorker) process.exit(1);
  },
);
