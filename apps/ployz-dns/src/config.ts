/**
 * ployz-dns configuration: parsed once at start from environment and flags (flags win) with the
 * one zod contract ployzd builds the env from (@ployz/protocol `DnsEnv`). Invalid configuration
 * is a CONFIG_INVALID PloyzError whose message names the offending flag and env variable.
 */
import { parseArgs } from 'node:util';
import {
  ADMIN_PATHS,
  DNS_ADMIN_ALT_PORT,
  DNS_ADMIN_PORT,
  DNS_PORT,
  DNS_TCP_MAX_PER_SOURCE,
  DNS_TCP_MESSAGE_TIMEOUT_MS,
  DnsEnv,
  type DnsConfig as DnsEnvConfig,
  type DnsSettings,
  NATS_URL_IN_NETNS,
} from '@ployz/protocol';
import { DNS_ZONE } from '@ployz/routing';
import { PloyzError } from '@ployz/types';

export { type HostPort, parseHostPort } from '@ployz/protocol';

/** Every setting, its env name and its default: @ployz/protocol's `DnsEnv` (what ployzd builds). */
export const DnsConfigSchema = DnsEnv.schema;
export type DnsConfig = DnsEnvConfig;

/** The flag of each setting; the NKey seed and the machine id are env only. */
const FLAGS: Record<keyof DnsSettings, string | null> = {
  listen: 'listen',
  admin: 'admin',
  natsUrl: 'nats-url',
  natsNkeySeed: null,
  natsNkeySeedFile: null,
  installation: 'installation',
  authority: 'authority',
  machineId: null,
  upstreams: 'upstream',
  resolvConf: 'resolv-conf',
  upstreamTimeoutMs: 'upstream-timeout-ms',
  snapshotFile: 'snapshot-file',
  logLevel: 'log-level',
  workers: 'workers',
  startWaitMs: 'start-wait-ms',
  adminAltPort: 'admin-alt-port',
  cacheMaxEntries: 'cache-max-entries',
  cacheMaxTtl: 'cache-max-ttl',
  tcpMessageTimeoutMs: 'tcp-message-timeout-ms',
  tcpMaxPerSource: 'tcp-max-per-source',
};
/** Flags that may be given more than once (joined into the env's comma list). */
const REPEATABLE = new Set<keyof DnsSettings>(['listen', 'upstreams']);

const env = (key: keyof DnsSettings) => DnsEnv.settings[key].env;

export const HELP = `ployz-dns — internal DNS for ${DNS_ZONE}, fed by the routing projection

Usage: ployz-dns [options]

Options (environment variable in brackets; flags win):
  --listen <ip[:port]>        DNS listen address, UDP+TCP, repeatable [${env('listen')}, comma list]
                              default 127.0.0.1:${DNS_PORT}
  --admin <ip[:port]>         admin HTTP listener: ${Object.values(ADMIN_PATHS).join(' ')}
                              [${env('admin')}] default 127.0.0.1:${DNS_ADMIN_PORT}
  --nats-url <url>            NATS server [${env('natsUrl')}] default ${NATS_URL_IN_NETNS}
                              NKey seed of its NATS identity: env ${env('natsNkeySeed')} only,
                              or a file holding it, re-read at every reconnect: env
                              ${env('natsNkeySeedFile')} (wins)
  --installation <name>       installation [${env('installation')}] default local
  --authority <name>          deploy authority [${env('authority')}] default auth-default
                              the machine it runs on: env ${env('machineId')} (ployzd sets it)
  --upstream <ip[:port]>      upstream resolver, repeatable [${env('upstreams')}, comma list]
                              default: the nameservers in --resolv-conf
  --resolv-conf <path>        [${env('resolvConf')}] default /etc/resolv.conf
  --upstream-timeout-ms <n>   per-upstream timeout before SERVFAIL [${env('upstreamTimeoutMs')}] default 2000
  --snapshot-file <path>      serve a fixed routing snapshot (JSON) instead of NATS [${env('snapshotFile')}]
  --cache-max-entries <n>     upstream answers kept for names outside the zone, 0 = no cache
                              [${env('cacheMaxEntries')}] default 10000
  --cache-max-ttl <seconds>   longest a forwarded answer is kept [${env('cacheMaxTtl')}] default 3600
  --tcp-message-timeout-ms <n>
                              a TCP message must arrive whole within this long of its first byte
                              [${env('tcpMessageTimeoutMs')}] default ${DNS_TCP_MESSAGE_TIMEOUT_MS}
  --tcp-max-per-source <n>    TCP connections open at once per source address
                              [${env('tcpMaxPerSource')}] default ${DNS_TCP_MAX_PER_SOURCE}
  --workers <n>               DNS worker processes sharing the ports (SO_REUSEPORT); each follows
                              the routing feed; worker 1 serves the admin listener [${env('workers')}] default 1
  --start-wait-ms <n>         replace-beside: bind with SO_REUSEPORT once the first view is loaded
                              (at most this long; 0: off) [${env('startWaitMs')}] default 0
  --admin-alt-port <port>     replace-beside: admin port while the admin port is taken
                              [${env('adminAltPort')}] default ${DNS_ADMIN_ALT_PORT}
  --log-level <level>         [${env('logLevel')}] default info
  --version                   print the version
  --help                      print this help
`;

export type CliAction = { kind: 'help' } | { kind: 'version' } | { kind: 'run'; config: DnsConfig };

/** Parses flags and environment. Throws PloyzError CONFIG_INVALID with a message saying what to fix. */
export function parseCli(argv: string[], environment: NodeJS.ProcessEnv): CliAction {
  let values: FlagValues;
  try {
    values = parseFlags(argv);
  } catch (error) {
    throw new PloyzError('CONFIG_INVALID', `${(error as Error).message}; see ployz-dns --help`, {
      cause: error,
    });
  }
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  const flags: Partial<Record<keyof DnsSettings, string>> = {};
  for (const [key, flag] of Object.entries(FLAGS) as [keyof DnsSettings, string | null][]) {
    if (flag === null) continue;
    const value = values[flag];
    if (typeof value === 'string') flags[key] = value;
    else if (Array.isArray(value)) flags[key] = value.join(',');
  }
  const parsed = DnsEnv.parse(environment, flags);
  if (!parsed.success) {
    const problems = parsed.issues.map((issue) => {
      if (issue.key === null) return `config: ${issue.message}`;
      const flag = FLAGS[issue.key as keyof DnsSettings];
      return `${flag === null ? '' : `--${flag} / `}${issue.env}: ${issue.message}`;
    });
    throw new PloyzError('CONFIG_INVALID', `invalid ployz-dns configuration: ${problems.join('; ')}`, {
      details: { issues: problems },
    });
  }
  return { kind: 'run', config: parsed.config };
}

type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parseFlags(argv: string[]): FlagValues {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    version: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const [key, flag] of Object.entries(FLAGS) as [keyof DnsSettings, string | null][]) {
    if (flag !== null) options[flag] = { type: 'string', ...(REPEATABLE.has(key) ? { multiple: true } : {}) };
  }
  return parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values;
}
