#!/usr/bin/env node
import { createRequire } from 'node:module';
import { isPloyzError } from '@ployz/types';
import { pino } from 'pino';
import { helpText, parseGatewayArgs } from './config.ts';
import { startGateway } from './gateway.ts';

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
  const logger = pino({ name: 'ployz-gateway', level: parsed.config.logLevel });
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(parsed.config, { logger, version });
  } catch (error) {
    logger.fatal({ err: error }, 'gateway failed to start');
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void gateway.close().then(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`INTERNAL: ${(error as Error).stack ?? String(error)}\n`);
    process.exitCode = 1;
  },
);
