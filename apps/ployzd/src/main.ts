#!/usr/bin/env node
/**
 * ployzd entry: `ployzd run [--flags]` (flags and PLOYZ_* env: see daemon/config.ts), `--version`,
 * `--help`. Logs are JSON lines (pino) on stdout. SIGTERM/SIGINT stop the ephemeral parts and exit
 * 0; the data plane keeps running. An error that stops it prints `CODE: message` on stderr and exits
 * with the code's status from @ployz/types (docs/errors.md: 2 refused, 1 failed).
 */
import { EXIT_STATUS, exitStatus, exitStatusOf, isPloyzError } from '@ployz/types';
import { pino } from 'pino';
import { parseDaemonConfig } from './daemon/config.ts';
import { DAEMON_VERSION, Daemon } from './daemon/daemon.ts';
import { daemonPlugins } from './daemon/plugins.ts';
import { connectDocker, DockerEngine } from './runtime/docker.ts';

const HELP = `ployzd ${DAEMON_VERSION} — the Ployz daemon

usage: ployzd run [--state-dir DIR] [--socket-path PATH] [--gateway-port N] [--container-prefix P]
                  [--bridge-name NAME] [--cluster-range CIDR] [--subnet CIDR] [--log-level LEVEL]
                  [--metrics-listen HOST:PORT|off] [--gateway-https-port N|off]
                  [--acme-directory URL|off] [--acme-ca-file PEM] [--acme-email ADDR] …
       ployzd --version

Every flag also reads from env PLOYZ_<FLAG> (e.g. PLOYZ_STATE_DIR).`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v') {
    process.stdout.write(`ployzd ${DAEMON_VERSION}\n`);
    return EXIT_STATUS.OK;
  }
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${HELP}\n`);
    return command === undefined ? exitStatus('INVALID_ARGUMENT') : EXIT_STATUS.OK;
  }
  if (command !== 'run') {
    process.stderr.write(`INVALID_ARGUMENT: unknown command ${command}; try: ployzd run\n`);
    return exitStatus('INVALID_ARGUMENT');
  }
  const config = parseDaemonConfig(rest, process.env);
  const logger = pino({ level: config.logLevel, base: { app: 'ployzd', pid: process.pid } });
  const daemon = new Daemon(
    config,
    new DockerEngine(connectDocker(config.dockerSocket)),
    logger,
    daemonPlugins(),
  );
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping ephemeral parts; the data plane keeps running');
    void daemon.stop().then(
      (order) => {
        logger.info({ order }, 'ployzd stopped');
        process.exit(EXIT_STATUS.OK);
      },
      (error: unknown) => {
        logger.error({ err: String(error) }, 'stop failed');
        process.exit(EXIT_STATUS.FAILED);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await daemon.start();
  return -1;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    if (isPloyzError(error)) process.stderr.write(`${error.code}: ${error.message}\n`);
    else
      process.stderr.write(
        `INTERNAL: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    process.exitCode = exitStatusOf(error);
  },
);
