#!/usr/bin/env node
/**
 * ployz-dns entry point: parse config once, follow the routing projection, serve DNS and the
 * admin listener, shut down cleanly on SIGTERM/SIGINT.
 */
import { readFileSync } from 'node:fs';
import { PloyzError } from '@ployz/types';
import { pino } from 'pino';
import { HELP, parseCli } from './config.ts';
import { natsFeed, type StoreFeed, snapshotFileFeed } from './feed.ts';
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
  const log = pino({ name: 'ployz-dns', level: config.logLevel });

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

  let storeFeed: StoreFeed | null = null;
  let feed: Awaited<ReturnType<typeof snapshotFileFeed>>;
  try {
    if (config.snapshotFile !== null) {
      feed = await snapshotFileFeed(config.snapshotFile);
    } else {
      storeFeed = natsFeed(config);
      storeFeed.connect((error) =>
        log.warn({ err: errorText(error), nats: config.natsUrl }, 'NATS not reachable; retrying'),
      );
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
      admin: config.admin,
      upstreams,
      upstreamTimeoutMs: config.upstreamTimeoutMs,
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
    log.fatal({ err: errorText(error) }, 'cannot bind the DNS or admin listeners');
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
  });
  await service.close();
  await storeFeed?.close();
  log.info('stopped');
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`ployz-dns: ${errorText(error)}\n`);
    process.exitCode = 1;
  },
);
