/**
 * A gateway process as started (by ployzd, or by hand), and each worker of a multi-worker one:
 * settings parsed once (config.ts), then either the gateway itself, or — `--workers` > 1 or
 * replace-beside, not in a worker — the primary (workers.ts `becomePrimary`), which sheds all of
 * this before it supervises.
 */
import cluster from 'node:cluster';
import { createRequire } from 'node:module';
import { isPloyzError } from '@ployz/types';
import { pino } from 'pino';
import { helpText, parseGatewayArgs, workerCount } from './config.ts';
import {
  becomePrimary,
  isReplacementWorker,
  REPLACEMENT_LOAD_MS,
  serveWorker,
  workerSlot,
} from './workers.ts';

const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Runs until SIGTERM/SIGINT (or the primary is gone); returns the exit code. */
export async function launch(): Promise<number> {
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
    return becomePrimary({
      workers,
      version,
      logLevel: config.logLevel,
      adminHost: config.adminHost,
      adminPort: config.adminPort,
      adminAltPort: config.startWaitMs > 0 ? config.adminAltPort : null,
    });
  }
  const logger =
    slot === null
      ? pino({ name: 'ployz-gateway', level: config.logLevel })
      : pino({ name: 'ployz-gateway', level: config.logLevel, base: { pid: process.pid, worker: slot } });
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
