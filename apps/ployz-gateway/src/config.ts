import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import {
  ADMIN_PATHS,
  GATEWAY_ADMIN_PORT,
  GatewayEnv,
  type GatewayConfig as GatewayEnvConfig,
  type GatewaySettings,
} from '@ployz/protocol';
import { PloyzError } from '@ployz/types';

/**
 * Every setting is in @ployz/protocol's `GatewayEnv` (env name, schema, default: the contract
 * ployzd builds); here each gets its flag and its help line. Parsed once at start (STYLE.md §7).
 */
export const GatewayConfig = GatewayEnv.schema;
export type GatewayConfig = GatewayEnvConfig;

interface Flag {
  /** Omitted: env only (a secret that must not show up in `ps`). */
  flag?: string;
  help: string;
}

const FLAGS: Record<keyof GatewaySettings, Flag> = {
  natsUrl: { flag: 'nats-url', help: 'NATS server URL' },
  natsNkeySeed: { flag: 'nats-nkey-seed', help: 'NKey seed of its NATS identity (prefer the env)' },
  natsNkeySeedFile: {
    flag: 'nats-nkey-seed-file',
    help: 'file holding that seed, re-read at every reconnect (rotation)',
  },
  installation: { flag: 'installation', help: 'installation name' },
  authority: { flag: 'authority', help: 'owning authority' },
  machineId: { help: 'the machine it runs on (ployzd sets it)' },
  snapshotFile: { flag: 'snapshot-file', help: 'serve a fixed routing snapshot (JSON) instead of NATS' },
  listenHost: { flag: 'listen-host', help: 'public listen address' },
  httpPort: { flag: 'http-port', help: 'HTTP port (80)' },
  httpsPort: { flag: 'https-port', help: 'HTTPS port (443)' },
  certDir: { flag: 'cert-dir', help: 'certificates as <hostname>.crt/.key, watched; enables HTTPS' },
  acmeDir: { flag: 'acme-dir', help: 'ACME certificates and HTTP-01 answers fed by ployzd; enables HTTPS' },
  adminHost: { flag: 'admin-host', help: 'admin listen address' },
  adminPort: { flag: 'admin-port', help: `admin port (${GATEWAY_ADMIN_PORT})` },
  maxHeaderBytes: { flag: 'max-header-bytes', help: 'request header limit' },
  headersTimeoutMs: { flag: 'headers-timeout-ms', help: 'time to receive request headers' },
  requestTimeoutMs: { flag: 'request-timeout-ms', help: 'time to receive a whole request' },
  bodyIdleTimeoutMs: { flag: 'body-idle-timeout-ms', help: 'longest pause inside a request body' },
  upstreamTimeoutMs: { flag: 'upstream-timeout-ms', help: 'longest upstream silence' },
  connectTimeoutMs: { flag: 'connect-timeout-ms', help: 'upstream connect timeout' },
  machineProbeIntervalMs: {
    flag: 'machine-probe-interval-ms',
    help: 'probe each other machine this often (0: never)',
  },
  machineProbeTimeoutMs: { flag: 'machine-probe-timeout-ms', help: 'a machine probe missed after this' },
  keepAliveTimeoutMs: { flag: 'keep-alive-timeout-ms', help: 'idle client keep-alive' },
  drainTimeoutMs: { flag: 'drain-timeout-ms', help: 'shutdown: wait for in-flight requests' },
  maxLagMs: { flag: 'max-lag-ms', help: 'stale when behind this long' },
  logLevel: { flag: 'log-level', help: 'pino level' },
  workers: { flag: 'workers', help: 'worker processes sharing the ports (0: one per core)' },
  startWaitMs: {
    flag: 'start-wait-ms',
    help: 'replace-beside: bind with SO_REUSEPORT after the first table (at most this long; 0: off)',
  },
  adminAltPort: { flag: 'admin-alt-port', help: 'replace-beside: admin port while the admin port is taken' },
};

interface Setting {
  key: keyof GatewaySettings;
  flag: string | undefined;
  env: string;
  help: string;
}

const SETTINGS: Setting[] = (Object.keys(FLAGS) as (keyof GatewaySettings)[]).map((key) => ({
  key,
  flag: FLAGS[key].flag,
  env: GatewayEnv.settings[key].env,
  help: FLAGS[key].help,
}));

export function helpText(version: string): string {
  const lines = [
    `ployz-gateway ${version} — HTTP(S) reverse proxy fed by the Ployz routing projection`,
    '',
    'Usage: ployz-gateway [flags]   (every flag also reads from its env variable)',
    '',
  ];
  for (const s of SETTINGS) {
    const flag = s.flag === undefined ? '(env only)' : `--${s.flag}`;
    lines.push(`  ${flag.padEnd(24)} ${s.env.padEnd(36)} ${s.help}`);
  }
  lines.push('  --version', '  --help', '');
  const paths = Object.values(ADMIN_PATHS).join(', ');
  lines.push(`Admin endpoints: ${paths} on --admin-host:--admin-port.`);
  return lines.join('\n');
}

export type ParsedArgs = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: GatewayConfig };

/** Parses flags over env over defaults. Throws CONFIG_INVALID with every problem named. */
export function parseGatewayArgs(argv: readonly string[], env: NodeJS.ProcessEnv): ParsedArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    const options: Record<string, { type: 'string' | 'boolean' }> = {
      help: { type: 'boolean' },
      version: { type: 'boolean' },
    };
    for (const s of SETTINGS) if (s.flag !== undefined) options[s.flag] = { type: 'string' };
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new PloyzError('CONFIG_INVALID', `${(error as Error).message}; see ployz-gateway --help`, {
      cause: error,
    });
  }
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  const flags: Partial<Record<keyof GatewaySettings, string>> = {};
  for (const s of SETTINGS) {
    const value = s.flag === undefined ? undefined : values[s.flag];
    if (typeof value === 'string') flags[s.key] = value;
  }
  const parsed = GatewayEnv.parse(env, flags);
  if (!parsed.success) {
    const problems = parsed.issues.map((issue) => {
      const setting = SETTINGS.find((s) => s.key === issue.key);
      if (setting === undefined) return issue.message;
      const names = setting.flag === undefined ? setting.env : `--${setting.flag} / ${setting.env}`;
      return `${names}: ${issue.message}`;
    });
    throw new PloyzError('CONFIG_INVALID', `invalid gateway configuration: ${problems.join('; ')}`);
  }
  return { kind: 'run', config: parsed.config };
}

/** The worker count `--workers` asks for: 0 is one per core this process may run on. */
export function workerCount(config: Pick<GatewayConfig, 'workers'>): number {
  return config.workers === 0 ? availableParallelism() : config.workers;
}
