#!/usr/bin/env node
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import { isPloyzError } from '@ployz/types';
import { pino } from 'pino';
import { helpText, parseGatewayArgs, workerCount } from './config.ts';
import { isReplacementWorker, REPLACEMENT_LOAD_MS, runPrimary, serveWorker, workerSlot } from './workers.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseGatewayArgs>;
  try {
    parsed = parseGatewayArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (isPloyzError(error)) {
      process.stderr.write(`${error.code}: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${helpText(version)}\n`);
    return 0;
  }
  if (parsed.kind === 'version') {
    process.stdout.write(`ployz-gateway ${version}\n`);
    return 0;
  }
  const config = parsed.config;
  const workers = workerCount(config);
  const slot = workerSlot();
  // Replace-beside (start wait set) always runs a primary: it holds the admin listener that moves
  // from the alternate port to the admin port (docs/adr/0014-replace-beside.md).
  if ((workers > 1 || config.startWaitMs > 0) && slot === null) {
    if (
      config.httpPort === 0 ||
      ((config.certDir !== undefined || config.acmeDir !== undefined) && config.httpsPort === 0)
    ) {
      process.stderr.write(
        'CONFIG_INVALID: --workers > 1 needs explicit serving ports (--http-port, --https-port not 0)\n',
      );
      return 2;
    }
    const logger = pino({
      name: 'ployz-gateway',
      level: config.logLevel,
      base: { pid: process.pid, worker: 'primary' },
    });
    return runPrimary({ config, workers, logger, version });
  }
  const logger =
    slot === null
      ? pino({ name: 'ployz-gateway', level: config.logLevel })
      : pino({ name: 'ployz-gateway', level: config.logLevel, base: { pid: process.pid, worker: slot } });
  // Imported here: a primary never loads the proxy, the routing follower or its feeds (its RSS).
  const { startGateway } = await import('./gateway.ts');
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(config, {
      logger,
      version,
      ...(slot === null
        ? {}
        : {
            worker: {
              reusePort: true,
              ...(isReplacementWorker()
                ? { loadBeforeListenMs: REPLACEMENT_LOAD_MS }
                : config.startWaitMs > 0
                  ? { loadBeforeListenMs: config.startWaitMs }
                  : {}),
            },
          }),
    });
  } catch (error) {
    logger.fatal({ err: error }, 'gateway failed to start');
    return 1;
  }
  if (slot !== null) serveWorker(gateway);
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void gateway.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
    // A worker whose primary is gone (killed) drains and leaves instead of holding the ports.
    if (cluster.isWorker) process.once('disconnect', () => stop('primary gone'));
  });
  return 0;
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
