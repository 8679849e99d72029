/**
 * The env contract of the data-plane components (DESIGN.md §2.1): ployzd builds each edge app's
 * env (apps/ployzd/src/dataplane/component-spec.ts), the app parses it (apps/ployz-gateway and
 * apps/ployz-dns `src/config.ts`). One table per app names every setting's env variable, its
 * schema and its default; the ports and admin paths both sides agree on are the constants below.
 *
 * Pure: zod only, no Node APIs (the IP checks are zod's), so any side may import it.
 */
import { PloyzError } from '@ployz/types';
import { z } from 'zod';

// ---------------------------------------------------------------- ports and paths

/** ployz-nats, inside the networking netns (and on the bridge `.2` for the host). */
export const NATS_CLIENT_PORT = 4222;
export const NATS_MONITOR_PORT = 8222;
/** The user every member's ployz-nats authenticates as on that port (with the installation's leaf secret). */
export const LEAF_USER = 'ployz-leaf';
/** NATS cluster and leafnode ports: not served yet, closed to workloads ahead of the mesh. */
export const NATS_CLUSTER_PORT = 6222;
export const NATS_LEAF_PORT = 7422;
/**
 * ployz-nats-store, a storage machine's JetStream cluster member beside ployz-nats (issue 19,
 * docs/adr/0020-store-cluster-member.md): its client, leafnode and monitoring ports. Its routes
 * use NATS_CLUSTER_PORT. All closed to workloads like the ports above.
 */
export const NATS_STORE_CLIENT_PORT = 4223;
export const NATS_STORE_LEAF_PORT = 7423;
export const NATS_STORE_MONITOR_PORT = 8223;
/** The user the store members' routes authenticate as (password derived from the leaf secret). */
export const ROUTE_USER = 'ployz-route';
/** The ports ployzd gives the gateway in the netns (the host publishes its own port onto HTTP). */
export const GATEWAY_HTTP_PORT = 8080;
export const GATEWAY_HTTPS_PORT = 8443;
export const GATEWAY_ADMIN_PORT = 9180;
/**
 * Where a replacement edge app answers admin while the instance it replaces still holds the admin
 * port (docs/adr/0014-replace-beside.md); it moves to the main port once that is free.
 */
export const GATEWAY_ADMIN_ALT_PORT = 9181;
export const DNS_PORT = 53;
export const DNS_ADMIN_PORT = 9053;
export const DNS_ADMIN_ALT_PORT = 9054;

export { ADMIN_PATHS } from './admin-beside.ts';

/** NATS as an edge app reaches it: ployz-nats shares the networking netns. */
export const NATS_URL_IN_NETNS = `nats://127.0.0.1:${NATS_CLIENT_PORT}`;
export const DEFAULT_INSTALLATION = 'local';
export const DEFAULT_AUTHORITY = 'auth-default';

// ---------------------------------------------------------------- addresses

export interface HostPort {
  host: string;
  port: number;
}

function isIpAddress(text: string): 4 | 6 | 0 {
  if (z.ipv4().safeParse(text).success) return 4;
  if (z.ipv6().safeParse(text).success) return 6;
  return 0;
}

/**
 * `ip`, `ip:port`, `[v6]:port` or a bare IPv6 address; `defaultPort` when no port is given.
 * Host names are refused (a listener binds an address). Throws an Error saying what is wrong.
 */
export function parseHostPort(text: string, defaultPort: number): HostPort {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  let host: string;
  let port = defaultPort;
  if (bracketed) {
    host = bracketed[1] ?? '';
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (isIpAddress(trimmed) === 6) {
    host = trimmed;
  } else {
    const colon = trimmed.lastIndexOf(':');
    host = colon < 0 ? trimmed : trimmed.slice(0, colon);
    const portText = trimmed.slice(colon + 1);
    if (colon >= 0) port = /^\d+$/.test(portText) ? Number(portText) : Number.NaN;
  }
  if (isIpAddress(host) === 0)
    throw new Error(`"${text}" is not an IP address (host names are not accepted)`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${text}" has an invalid port`);
  return { host, port };
}

/** The form `parseHostPort` reads back: `ip:port`, or `[v6]:port`. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIpAddress(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

// ---------------------------------------------------------------- the contract machinery

/** One setting: the env variable it is read from and the schema that parses its text. */
export interface EnvSetting<S extends z.ZodType = z.ZodType> {
  env: string;
  schema: S;
}
export type EnvSettings = Record<string, EnvSetting>;
type Shape<T extends EnvSettings> = { [K in keyof T]: T[K]['schema'] };

/** What an app gets from its env: one typed field per setting. */
export type EnvConfig<T extends EnvSettings> = z.output<z.ZodObject<Shape<T>>>;
/** What ployzd gives the builder: typed values, any of them left out (the app's default applies). */
export type EnvValues<T extends EnvSettings> = { [K in keyof T]?: z.output<T[K]['schema']> | undefined };

export interface EnvIssue {
  /** The setting (a key of the contract), or null for a problem of the whole config. */
  key: string | null;
  env: string | null;
  message: string;
}
export type EnvParseResult<T extends EnvSettings> =
  | { success: true; config: EnvConfig<T> }
  | { success: false; issues: EnvIssue[] };

export interface EnvContract<T extends EnvSettings> {
  /** The app (`ployz-gateway`), for messages. */
  readonly app: string;
  readonly settings: T;
  /** The config schema, keyed by setting (not by env name). */
  readonly schema: z.ZodObject<Shape<T>>;
  /** Every env variable the app reads, in table order. */
  readonly envNames: readonly string[];
  /**
   * env → config. `overrides` (the app's flags, by setting) win over the env; an empty string
   * counts as unset, so the default applies.
   */
  parse(
    env: Readonly<Record<string, string | undefined>>,
    overrides?: { readonly [K in keyof T]?: string | undefined },
  ): EnvParseResult<T>;
  /**
   * Typed values → the env, only the values given (no defaults written). Throws CONFIG_INVALID
   * if the app would refuse what was built.
   */
  build(values: EnvValues<T>): Record<string, string>;
}

function formatEnvValue(value: unknown, env: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const isHostPort = (v: unknown): v is HostPort =>
    typeof v === 'object' && v !== null && 'host' in v && 'port' in v;
  if (isHostPort(value)) return formatHostPort(value);
  if (Array.isArray(value) && value.every(isHostPort)) return value.map(formatHostPort).join(',');
  throw new PloyzError('INTERNAL', `${env}: no env form for ${JSON.stringify(value)}`);
}

export function defineEnvContract<T extends EnvSettings>(app: string, settings: T): EnvContract<T> {
  const table: [key: keyof T & string, setting: EnvSetting][] = Object.entries(settings);
  const shape = Object.fromEntries(table.map(([key, s]) => [key, s.schema])) as Shape<T>;
  const schema = z.object(shape);
  const envOf = new Map<PropertyKey, string>(table.map(([key, s]) => [key, s.env]));
  const contract: EnvContract<T> = {
    app,
    settings,
    schema,
    envNames: table.map(([, s]) => s.env),
    parse(env, overrides = {}) {
      const raw: Record<string, string> = {};
      for (const [key, setting] of table) {
        const override = overrides[key];
        const value = override !== undefined && override !== '' ? override : env[setting.env];
        if (value !== undefined && value !== '') raw[key] = value;
      }
      const parsed = schema.safeParse(raw);
      if (parsed.success) return { success: true, config: parsed.data as EnvConfig<T> };
      return {
        success: false,
        issues: parsed.error.issues.map((issue) => {
          const key = issue.path[0];
          const name = key === undefined ? undefined : envOf.get(key);
          return name === undefined
            ? { key: null, env: null, message: issue.message }
            : { key: String(key), env: name, message: issue.message };
        }),
      };
    },
    build(values) {
      const env: Record<string, string> = {};
      for (const [key, setting] of table) {
        const text = formatEnvValue(values[key], setting.env);
        if (text !== undefined) env[setting.env] = text;
      }
      const check = contract.parse(env);
      if (!check.success) {
        const problems = check.issues.map((i) => `${i.env ?? 'config'}: ${i.message}`);
        throw new PloyzError('CONFIG_INVALID', `${app} would refuse this env: ${problems.join('; ')}`);
      }
      return env;
    },
  };
  return contract;
}

// ---------------------------------------------------------------- shared field schemas

const Text = z.string().min(1);
const Port = z.coerce.number().int().min(0).max(65535);
const Millis = z.coerce.number().int().positive();
/** The installation and authority name stream and bucket names (@ployz/store's scope rule). */
const ScopeToken = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, '1-64 letters, digits, _ and -');
const LogLevel = z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']);

function hostPortSchema(defaultPort: number) {
  return z.string().transform((text, ctx): HostPort => {
    try {
      return parseHostPort(text, defaultPort);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
}

/** A comma list of `parseHostPort` addresses. */
function hostPortListSchema(defaultPort: number) {
  return z.string().transform((text, ctx): HostPort[] => {
    const out: HostPort[] = [];
    for (const item of text.split(',').filter((i) => i.trim() !== '')) {
      try {
        out.push(parseHostPort(item, defaultPort));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }
    return out;
  });
}

/** What every edge app reads to follow the routing projection over NATS. */
const EDGE_SETTINGS = {
  natsUrl: { env: 'PLOYZ_NATS_URL', schema: Text.default(NATS_URL_IN_NETNS) },
  /** NKey seed of the app's NATS identity (docs/adr/0011-trust-model.md); env only, never a flag. */
  natsNkeySeed: { env: 'PLOYZ_NATS_NKEY_SEED', schema: Text.optional() },
  /**
   * A file holding that seed (mounted by ployzd), read again at every NATS reconnect so a rotated
   * seed is picked up without a restart; wins over `natsNkeySeed`.
   */
  natsNkeySeedFile: { env: 'PLOYZ_NATS_NKEY_SEED_FILE', schema: Text.optional() },
  installation: { env: 'PLOYZ_INSTALLATION', schema: ScopeToken.default(DEFAULT_INSTALLATION) },
  authority: { env: 'PLOYZ_AUTHORITY', schema: ScopeToken.default(DEFAULT_AUTHORITY) },
  /** The machine the app runs on (ployzd sets it; for logs and status). */
  machineId: { env: 'PLOYZ_MACHINE_ID', schema: Text.optional() },
} as const satisfies EnvSettings;

// ---------------------------------------------------------------- ployz-gateway

export const GatewayEnv = defineEnvContract('ployz-gateway', {
  ...EDGE_SETTINGS,
  /** Serve a fixed RoutingSnapshot from this JSON file instead of following NATS. */
  snapshotFile: { env: 'PLOYZ_GATEWAY_SNAPSHOT_FILE', schema: Text.optional() },
  listenHost: { env: 'PLOYZ_GATEWAY_LISTEN_HOST', schema: Text.default('::') },
  httpPort: { env: 'PLOYZ_GATEWAY_HTTP_PORT', schema: Port.default(80) },
  httpsPort: { env: 'PLOYZ_GATEWAY_HTTPS_PORT', schema: Port.default(443) },
  /** Directory of `<hostname>.crt` + `<hostname>.key` (PEM); HTTPS is served only when set. */
  certDir: { env: 'PLOYZ_GATEWAY_CERT_DIR', schema: Text.optional() },
  /**
   * What ployzd's ACME renewer feeds (docs/adr/0015-acme.md): `certs/<hostname>.crt|.key` and
   * `challenges/<token>` (the HTTP-01 key authorization); enables HTTPS and the challenge answers.
   */
  acmeDir: { env: 'PLOYZ_GATEWAY_ACME_DIR', schema: Text.optional() },
  adminHost: { env: 'PLOYZ_GATEWAY_ADMIN_HOST', schema: Text.default('127.0.0.1') },
  adminPort: { env: 'PLOYZ_GATEWAY_ADMIN_PORT', schema: Port.default(GATEWAY_ADMIN_PORT) },
  maxHeaderBytes: {
    env: 'PLOYZ_GATEWAY_MAX_HEADER_BYTES',
    schema: z.coerce
      .number()
      .int()
      .min(1024)
      .max(1 << 20)
      .default(16 * 1024),
  },
  headersTimeoutMs: { env: 'PLOYZ_GATEWAY_HEADERS_TIMEOUT_MS', schema: Millis.default(10_000) },
  requestTimeoutMs: { env: 'PLOYZ_GATEWAY_REQUEST_TIMEOUT_MS', schema: Millis.default(30_000) },
  bodyIdleTimeoutMs: { env: 'PLOYZ_GATEWAY_BODY_IDLE_TIMEOUT_MS', schema: Millis.default(15_000) },
  upstreamTimeoutMs: { env: 'PLOYZ_GATEWAY_UPSTREAM_TIMEOUT_MS', schema: Millis.default(60_000) },
  connectTimeoutMs: { env: 'PLOYZ_GATEWAY_CONNECT_TIMEOUT_MS', schema: Millis.default(3_000) },
  /**
   * Down-marking of other machines: one TCP probe per machine this often (0: never), a miss after
   * the timeout; two misses in a row pass over its backends until it answers again.
   */
  machineProbeIntervalMs: {
    env: 'PLOYZ_GATEWAY_MACHINE_PROBE_INTERVAL_MS',
    schema: z.coerce.number().int().min(0).default(1_000),
  },
  machineProbeTimeoutMs: { env: 'PLOYZ_GATEWAY_MACHINE_PROBE_TIMEOUT_MS', schema: Millis.default(1_000) },
  keepAliveTimeoutMs: { env: 'PLOYZ_GATEWAY_KEEP_ALIVE_TIMEOUT_MS', schema: Millis.default(5_000) },
  drainTimeoutMs: { env: 'PLOYZ_GATEWAY_DRAIN_TIMEOUT_MS', schema: Millis.default(10_000) },
  maxLagMs: { env: 'PLOYZ_GATEWAY_MAX_LAG_MS', schema: Millis.default(5_000) },
  logLevel: { env: 'PLOYZ_GATEWAY_LOG_LEVEL', schema: LogLevel.default('info') },
  /**
   * Worker processes sharing the serving ports with SO_REUSEPORT, each with its own follower;
   * 0 = one per core the process may run on (docs/adr/0012-gateway-workers.md).
   */
  workers: { env: 'PLOYZ_GATEWAY_WORKERS', schema: z.coerce.number().int().min(0).max(64).default(0) },
  /**
   * Replace-beside (docs/adr/0014-replace-beside.md): > 0 lets a new instance start while another
   * serves the same ports — it binds them with SO_REUSEPORT only once its first routing table is
   * loaded (or after this long), and answers admin on `adminAltPort` while the admin port is taken.
   * 0: one instance, as before.
   */
  startWaitMs: {
    env: 'PLOYZ_GATEWAY_START_WAIT_MS',
    schema: z.coerce.number().int().min(0).max(600_000).default(0),
  },
  adminAltPort: { env: 'PLOYZ_GATEWAY_ADMIN_ALT_PORT', schema: Port.default(GATEWAY_ADMIN_ALT_PORT) },
});
export type GatewaySettings = (typeof GatewayEnv)['settings'];
export type GatewayConfig = EnvConfig<GatewaySettings>;

// ---------------------------------------------------------------- ployz-dns

/** ployz-dns's TCP limits when unset (RFC 7766 guidance: a slow sender must not hold a slot). */
export const DNS_TCP_MESSAGE_TIMEOUT_MS = 5000;
export const DNS_TCP_MAX_PER_SOURCE = 16;

export const DnsEnv = defineEnvContract('ployz-dns', {
  ...EDGE_SETTINGS,
  /** UDP+TCP listen addresses. */
  listen: {
    env: 'PLOYZ_DNS_LISTEN',
    schema: hostPortListSchema(DNS_PORT)
      .default(() => [{ host: '127.0.0.1', port: DNS_PORT }])
      .refine((l) => l.length > 0, 'at least one listen address is required'),
  },
  /** The admin HTTP listener (ADMIN_PATHS). */
  admin: {
    env: 'PLOYZ_DNS_ADMIN',
    schema: hostPortSchema(DNS_ADMIN_PORT).default(() => ({ host: '127.0.0.1', port: DNS_ADMIN_PORT })),
  },
  /** Explicit upstreams; when empty, the nameservers of `resolvConf` are used. */
  upstreams: { env: 'PLOYZ_DNS_UPSTREAMS', schema: hostPortListSchema(DNS_PORT).default(() => []) },
  resolvConf: { env: 'PLOYZ_DNS_RESOLV_CONF', schema: Text.default('/etc/resolv.conf') },
  upstreamTimeoutMs: {
    env: 'PLOYZ_DNS_UPSTREAM_TIMEOUT_MS',
    schema: z.coerce.number().int().min(50).max(30_000).default(2000),
  },
  /** Serve a fixed RoutingSnapshot from this JSON file instead of following NATS (bench, debugging). */
  snapshotFile: { env: 'PLOYZ_DNS_SNAPSHOT_FILE', schema: Text.optional() },
  logLevel: { env: 'PLOYZ_LOG_LEVEL', schema: LogLevel.default('info') },
  /** DNS worker processes sharing the listen ports with SO_REUSEPORT (1 = no extra process). */
  workers: { env: 'PLOYZ_DNS_WORKERS', schema: z.coerce.number().int().min(1).max(64).default(1) },
  /** Replace-beside, as the gateway's `startWaitMs`: UDP and TCP with SO_REUSEPORT after the first view. */
  startWaitMs: {
    env: 'PLOYZ_DNS_START_WAIT_MS',
    schema: z.coerce.number().int().min(0).max(600_000).default(0),
  },
  adminAltPort: { env: 'PLOYZ_DNS_ADMIN_ALT_PORT', schema: Port.default(DNS_ADMIN_ALT_PORT) },
  /** Upstream answers kept for names outside the zone (0 turns the cache off). */
  cacheMaxEntries: {
    env: 'PLOYZ_DNS_CACHE_MAX_ENTRIES',
    schema: z.coerce.number().int().min(0).max(10_000_000).default(10_000),
  },
  /** Longest a forwarded answer is kept, whatever its TTL (seconds). */
  cacheMaxTtl: {
    env: 'PLOYZ_DNS_CACHE_MAX_TTL',
    schema: z.coerce.number().int().min(1).max(604_800).default(3600),
  },
  /** A TCP message must arrive whole within this long of its first byte (milliseconds). */
  tcpMessageTimeoutMs: {
    env: 'PLOYZ_DNS_TCP_MESSAGE_TIMEOUT_MS',
    schema: z.coerce.number().int().min(100).max(120_000).default(DNS_TCP_MESSAGE_TIMEOUT_MS),
  },
  /** Most TCP connections open at once from one source address. */
  tcpMaxPerSource: {
    env: 'PLOYZ_DNS_TCP_MAX_PER_SOURCE',
    schema: z.coerce.number().int().min(1).max(512).default(DNS_TCP_MAX_PER_SOURCE),
  },
});
export type DnsSettings = (typeof DnsEnv)['settings'];
export type DnsConfig = EnvConfig<DnsSettings>;
