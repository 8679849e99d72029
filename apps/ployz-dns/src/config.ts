/**
 * ployz-dns configuration: parsed once at start from environment and flags (flags win) with one
 * zod schema. Invalid configuration is a CONFIG_INVALID PloyzError whose message names the
 * offending setting.
 */
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { PloyzError } from '@ployz/types';
import { z } from 'zod';

export interface HostPort {
  host: string;
  port: number;
}

/** `host`, `host:port`, `[v6]:port` or a bare IPv6 address; `defaultPort` when no port is given. */
export function parseHostPort(text: string, defaultPort: number): HostPort {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  let host: string;
  let port = defaultPort;
  if (bracketed) {
    host = bracketed[1] ?? '';
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (isIP(trimmed) === 6) {
    host = trimmed;
  } else {
    const colon = trimmed.lastIndexOf(':');
    host = colon < 0 ? trimmed : trimmed.slice(0, colon);
    if (colon >= 0) port = Number(trimmed.slice(colon + 1));
  }
  if (isIP(host) === 0) throw new Error(`"${text}" is not an IP address (host names are not accepted)`);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`"${text}" has an invalid port`);
  return { host, port };
}

const hostPortList = (defaultPort: number) =>
  z.array(z.string()).transform((items, ctx) => {
    const out: HostPort[] = [];
    for (const item of items.flatMap((i) => i.split(',')).filter((i) => i.trim() !== '')) {
      try {
        out.push(parseHostPort(item, defaultPort));
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
      }
    }
    return out;
  });

export const DnsConfigSchema = z.object({
  listen: hostPortList(53).refine((l) => l.length > 0, 'at least one listen address is required'),
  admin: z.string().transform((text, ctx) => {
    try {
      return parseHostPort(text, 9053);
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  }),
  natsUrl: z.string().min(1),
  installation: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -'),
  authority: z.string().regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and -'),
  /** Explicit upstreams; when empty, the nameservers of `resolvConf` are used. */
  upstreams: hostPortList(53),
  resolvConf: z.string().min(1),
  upstreamTimeoutMs: z.coerce.number().int().min(50).max(30_000),
  /** Serve a fixed RoutingSnapshot from this JSON file instead of following NATS (bench, debugging). */
  snapshotFile: z.string().min(1).nullable(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
  /** DNS worker processes sharing the listen ports with SO_REUSEPORT (1 = no extra process). */
  workers: z.coerce.number().int().min(1).max(64),
  /** Upstream answers kept for names outside the zone (0 turns the cache off). */
  cacheMaxEntries: z.coerce.number().int().min(0).max(10_000_000),
  /** Longest a forwarded answer is kept, whatever its TTL (seconds). */
  cacheMaxTtl: z.coerce.number().int().min(1).max(604_800),
});
export type DnsConfig = z.infer<typeof DnsConfigSchema>;

export const HELP = `ployz-dns — internal DNS for ployz.internal, fed by the routing projection

Usage: ployz-dns [options]

Options (environment variable in brackets; flags win):
  --listen <ip[:port]>        DNS listen address, UDP+TCP, repeatable [PLOYZ_DNS_LISTEN, comma list]
                              default 127.0.0.1:53
  --admin <ip[:port]>         admin HTTP listener: /_ployz/health /_ployz/status /metrics
                              [PLOYZ_DNS_ADMIN] default 127.0.0.1:9053
  --nats-url <url>            NATS server [PLOYZ_NATS_URL] default nats://127.0.0.1:4222
  --installation <name>       installation [PLOYZ_INSTALLATION] default local
  --authority <name>          deploy authority [PLOYZ_AUTHORITY] default auth-default
  --upstream <ip[:port]>      upstream resolver, repeatable [PLOYZ_DNS_UPSTREAMS, comma list]
                              default: the nameservers in --resolv-conf
  --resolv-conf <path>        [PLOYZ_DNS_RESOLV_CONF] default /etc/resolv.conf
  --upstream-timeout-ms <n>   per-upstream timeout before SERVFAIL [PLOYZ_DNS_UPSTREAM_TIMEOUT_MS] default 2000
  --snapshot-file <path>      serve a fixed routing snapshot (JSON) instead of NATS [PLOYZ_DNS_SNAPSHOT_FILE]
  --cache-max-entries <n>     upstream answers kept for names outside the zone, 0 = no cache
                              [PLOYZ_DNS_CACHE_MAX_ENTRIES] default 10000
  --cache-max-ttl <seconds>   longest a forwarded answer is kept [PLOYZ_DNS_CACHE_MAX_TTL] default 3600
  --workers <n>               DNS worker processes sharing the ports (SO_REUSEPORT); each follows
                              the routing feed; worker 1 serves the admin listener [PLOYZ_DNS_WORKERS] default 1
  --log-level <level>         [PLOYZ_LOG_LEVEL] default info
  --version                   print the version
  --help                      print this help
`;

export type CliAction = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: DnsConfig };

/** Parses flags and environment. Throws PloyzError CONFIG_INVALID with a message saying what to fix. */
export function parseCli(argv: string[], env: NodeJS.ProcessEnv): CliAction {
  let values: ReturnType<typeof parseFlags>['values'];
  try {
    values = parseFlags(argv).values;
  } catch (error) {
    throw new PloyzError('CONFIG_INVALID', `${(error as Error).message}; see ployz-dns --help`, {
      cause: error,
    });
  }
  if (values.help) return { kind: 'help' };
  if (values.version) return { kind: 'version' };
  const list = (flag: string[] | undefined, variable: string | undefined, fallback: string[]) =>
    flag !== undefined && flag.length > 0
      ? flag
      : variable !== undefined && variable !== ''
        ? [variable]
        : fallback;
  const raw = {
    listen: list(values.listen, env.PLOYZ_DNS_LISTEN, ['127.0.0.1:53']),
    admin: values.admin ?? env.PLOYZ_DNS_ADMIN ?? '127.0.0.1:9053',
    natsUrl: values['nats-url'] ?? env.PLOYZ_NATS_URL ?? 'nats://127.0.0.1:4222',
    installation: values.installation ?? env.PLOYZ_INSTALLATION ?? 'local',
    authority: values.authority ?? env.PLOYZ_AUTHORITY ?? 'auth-default',
    upstreams: list(values.upstream, env.PLOYZ_DNS_UPSTREAMS, []),
    resolvConf: values['resolv-conf'] ?? env.PLOYZ_DNS_RESOLV_CONF ?? '/etc/resolv.conf',
    upstreamTimeoutMs: values['upstream-timeout-ms'] ?? env.PLOYZ_DNS_UPSTREAM_TIMEOUT_MS ?? '2000',
    snapshotFile: values['snapshot-file'] ?? env.PLOYZ_DNS_SNAPSHOT_FILE ?? null,
    logLevel: values['log-level'] ?? env.PLOYZ_LOG_LEVEL ?? 'info',
    workers: values.workers ?? env.PLOYZ_DNS_WORKERS ?? '1',
    cacheMaxEntries: values['cache-max-entries'] ?? env.PLOYZ_DNS_CACHE_MAX_ENTRIES ?? '10000',
    cacheMaxTtl: values['cache-max-ttl'] ?? env.PLOYZ_DNS_CACHE_MAX_TTL ?? '3600',
  };
  const parsed = DnsConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join('.') || 'config'}: ${issue.message}`,
    );
    throw new PloyzError('CONFIG_INVALID', `invalid ployz-dns configuration: ${problems.join('; ')}`, {
      details: { issues: problems },
    });
  }
  return { kind: 'run', config: parsed.data };
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      listen: { type: 'string', multiple: true },
      admin: { type: 'string' },
      'nats-url': { type: 'string' },
      installation: { type: 'string' },
      authority: { type: 'string' },
      upstream: { type: 'string', multiple: true },
      'resolv-conf': { type: 'string' },
      'upstream-timeout-ms': { type: 'string' },
      'snapshot-file': { type: 'string' },
      'log-level': { type: 'string' },
      workers: { type: 'string' },
      'cache-max-entries': { type: 'string' },
      'cache-max-ttl': { type: 'string' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
