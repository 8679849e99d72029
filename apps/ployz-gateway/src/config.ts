import { parseArgs } from 'node:util';
import { PloyzError } from '@ployz/types';
import { z } from 'zod';

const Port = z.coerce.number().int().min(0).max(65535);
const Millis = z.coerce.number().int().positive();

/** Every setting, its flag and its env variable. Parsed once at start (STYLE.md §7). */
export const GatewayConfig = z.object({
  natsUrl: z.string().min(1).default('nats://127.0.0.1:4222'),
  installation: z.string().min(1).default('local'),
  authority: z.string().min(1).default('auth-default'),
  /** Serve a fixed RoutingSnapshot from this JSON file instead of following NATS. */
  snapshotFile: z.string().min(1).optional(),
  listenHost: z.string().min(1).default('::'),
  httpPort: Port.default(80),
  httpsPort: Port.default(443),
  /** Directory of `<hostname>.crt` + `<hostname>.key` (PEM); HTTPS is served only when set. */
  certDir: z.string().min(1).optional(),
  adminHost: z.string().min(1).default('127.0.0.1'),
  adminPort: Port.default(9180),
  maxHeaderBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1 << 20)
    .default(16 * 1024),
  headersTimeoutMs: Millis.default(10_000),
  requestTimeoutMs: Millis.default(30_000),
  bodyIdleTimeoutMs: Millis.default(15_000),
  upstreamTimeoutMs: Millis.default(60_000),
  connectTimeoutMs: Millis.default(3_000),
  keepAliveTimeoutMs: Millis.default(5_000),
  drainTimeoutMs: Millis.default(10_000),
  maxLagMs: Millis.default(5_000),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
});
export type GatewayConfig = z.infer<typeof GatewayConfig>;

interface Setting {
  key: keyof GatewayConfig;
  flag: string;
  env: string;
  help: string;
}

const SETTINGS: Setting[] = [
  { key: 'natsUrl', flag: 'nats-url', env: 'PLOYZ_NATS_URL', help: 'NATS server URL' },
  { key: 'installation', flag: 'installation', env: 'PLOYZ_INSTALLATION', help: 'installation name' },
  { key: 'authority', flag: 'authority', env: 'PLOYZ_AUTHORITY', help: 'owning authority' },
  {
    key: 'snapshotFile',
    flag: 'snapshot-file',
    env: 'PLOYZ_GATEWAY_SNAPSHOT_FILE',
    help: 'serve a fixed routing snapshot (JSON) instead of NATS',
  },
  { key: 'listenHost', flag: 'listen-host', env: 'PLOYZ_GATEWAY_LISTEN_HOST', help: 'public listen address' },
  { key: 'httpPort', flag: 'http-port', env: 'PLOYZ_GATEWAY_HTTP_PORT', help: 'HTTP port (80)' },
  { key: 'httpsPort', flag: 'https-port', env: 'PLOYZ_GATEWAY_HTTPS_PORT', help: 'HTTPS port (443)' },
  {
    key: 'certDir',
    flag: 'cert-dir',
    env: 'PLOYZ_GATEWAY_CERT_DIR',
    help: 'certificates as <hostname>.crt/.key, watched; enables HTTPS',
  },
  { key: 'adminHost', flag: 'admin-host', env: 'PLOYZ_GATEWAY_ADMIN_HOST', help: 'admin listen address' },
  { key: 'adminPort', flag: 'admin-port', env: 'PLOYZ_GATEWAY_ADMIN_PORT', help: 'admin port (9180)' },
  {
    key: 'maxHeaderBytes',
    flag: 'max-header-bytes',
    env: 'PLOYZ_GATEWAY_MAX_HEADER_BYTES',
    help: 'request header limit',
  },
  {
    key: 'headersTimeoutMs',
    flag: 'headers-timeout-ms',
    env: 'PLOYZ_GATEWAY_HEADERS_TIMEOUT_MS',
    help: 'time to receive request headers',
  },
  {
    key: 'requestTimeoutMs',
    flag: 'request-timeout-ms',
    env: 'PLOYZ_GATEWAY_REQUEST_TIMEOUT_MS',
    help: 'time to receive a whole request',
  },
  {
    key: 'bodyIdleTimeoutMs',
    flag: 'body-idle-timeout-ms',
    env: 'PLOYZ_GATEWAY_BODY_IDLE_TIMEOUT_MS',
    help: 'longest pause inside a request body',
  },
  {
    key: 'upstreamTimeoutMs',
    flag: 'upstream-timeout-ms',
    env: 'PLOYZ_GATEWAY_UPSTREAM_TIMEOUT_MS',
    help: 'longest upstream silence',
  },
  {
    key: 'connectTimeoutMs',
    flag: 'connect-timeout-ms',
    env: 'PLOYZ_GATEWAY_CONNECT_TIMEOUT_MS',
    help: 'upstream connect timeout',
  },
  {
    key: 'keepAliveTimeoutMs',
    flag: 'keep-alive-timeout-ms',
    env: 'PLOYZ_GATEWAY_KEEP_ALIVE_TIMEOUT_MS',
    help: 'idle client keep-alive',
  },
  {
    key: 'drainTimeoutMs',
    flag: 'drain-timeout-ms',
    env: 'PLOYZ_GATEWAY_DRAIN_TIMEOUT_MS',
    help: 'shutdown: wait for in-flight requests',
  },
  {
    key: 'maxLagMs',
    flag: 'max-lag-ms',
    env: 'PLOYZ_GATEWAY_MAX_LAG_MS',
    help: 'stale when behind this long',
  },
  { key: 'logLevel', flag: 'log-level', env: 'PLOYZ_GATEWAY_LOG_LEVEL', help: 'pino level' },
];

export function helpText(version: string): string {
  const lines = [
    `ployz-gateway ${version} — HTTP(S) reverse proxy fed by the Ployz routing projection`,
    '',
    'Usage: ployz-gateway [flags]   (every flag also reads from its env variable)',
    '',
  ];
  for (const s of SETTINGS) lines.push(`  --${s.flag.padEnd(22)} ${s.env.padEnd(36)} ${s.help}`);
  lines.push('  --version', '  --help', '');
  lines.push('Admin endpoints: /_ployz/health, /_ployz/status, /metrics on --admin-host:--admin-port.');
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
    for (const s of SETTINGS) options[s.flag] = { type: 'string' };
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new PloyzError('CONFIG_INVALID', `${(error as Error).message}; see ployz-gateway --help`, {
      cause: error,
    });
  }
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  const raw: Record<string, string> = {};
  for (const s of SETTINGS) {
    const value = values[s.flag] ?? env[s.env];
    if (typeof value === 'string' && value !== '') raw[s.key] = value;
  }
  const parsed = GatewayConfig.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const setting = SETTINGS.find((s) => s.key === issue.path[0]);
      return setting ? `--${setting.flag} / ${setting.env}: ${issue.message}` : issue.message;
    });
    throw new PloyzError('CONFIG_INVALID', `invalid gateway configuration: ${problems.join('; ')}`);
  }
  return { kind: 'run', config: parsed.data };
}
