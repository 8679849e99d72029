/**
 * The daemon's configuration, parsed once (env `PLOYZ_*`, then `--flags` on top) with one zod
 * schema. Tests give every install its own state dir, socket, bridge, subnet and name prefix.
 */
import { DEFAULT_JOIN_PORT, parseRegistryHost } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { z } from 'zod';
import { LETS_ENCRYPT_DIRECTORY } from '../acme/directory.ts';
import { DEFAULT_CLUSTER_RANGE, DEFAULT_OVERLAY_PREFIX } from '../machine/address.ts';

const Port = z.coerce.number().int().min(1).max(65535);
const Env = z.record(z.string(), z.string());

export const DaemonConfig = z.object({
  stateDir: z.string().min(1).default('/var/lib/ployz'),
  socketPath: z.string().min(1).default('/run/ployz/ployzd.sock'),
  dockerSocket: z.string().min(1).default('/var/run/docker.sock'),
  containerPrefix: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/, 'a docker name prefix like ployz-')
    .default('ployz-'),
  bridgeName: z
    .string()
    .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/)
    .default('ployz'),
  clusterRange: z.string().default(DEFAULT_CLUSTER_RANGE),
  /** Pin this machine's /24 instead of deriving it from the cluster range. */
  subnet: z.string().optional(),
  overlayPrefix: z.string().default(DEFAULT_OVERLAY_PREFIX),
  gatewayPort: Port.default(80),
  gatewayHostIp: z.string().default('0.0.0.0'),
  /**
   * Host port published onto the gateway's HTTPS listener (imported certificates and `tls =
   * "auto"` ones, chosen by SNI), on the same host IP as the HTTP port; `off`: not published.
   */
  gatewayHttpsPort: z
    .string()
    .default('443')
    .transform((text, ctx) => {
      if (text === 'off') return null;
      const port = Port.safeParse(text);
      if (!port.success) {
        ctx.addIssue({ code: 'custom', message: 'must be a port 1-65535 or off' });
        return z.NEVER;
      }
      return port.data;
    }),
  wireguardPort: Port.default(51820),
  /**
   * This machine's LAN address: the host of its default WireGuard endpoint and where the join
   * listener binds. Default: the first non-loopback IPv4 address (fleet/endpoint.ts lanAddress).
   */
  lanAddress: z.union([z.ipv4(), z.ipv6()]).optional(),
  /** TCP port of the join listener on the LAN address (0: any free port, for tests). */
  joinPort: z.coerce.number().int().min(0).max(65535).default(DEFAULT_JOIN_PORT),
  /**
   * Where the data-plane images come from (docs/adr/0017-image-versions.md): `host[:port]`; each
   * component is then `<registry>/ployz/<component>:<PLOYZ_VERSION>`, pulled when missing. Unset:
   * the machine's registry from `machine init|join --registry`, else the local builds
   * `ployz/<component>:latest` (scripts/images.sh). An `--image-<component>` overrides either.
   */
  imageRegistry: z
    .string()
    .optional()
    .transform((text, ctx) => {
      if (text === undefined) return undefined;
      const parsed = parseRegistryHost(text);
      if (parsed.ok) return parsed.host;
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    }),
  imageNetworking: z.string().optional(),
  imageNats: z.string().optional(),
  imageGateway: z.string().optional(),
  imageDns: z.string().optional(),
  /** JSON `{ "<component>": { "KEY": "value" } }` of extra env per component. */
  componentEnv: z
    .string()
    .default('{}')
    .transform((text, ctx) => {
      try {
        return z.partialRecord(z.enum(['networking', 'nats', 'gateway', 'dns']), Env).parse(JSON.parse(text));
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON like {"gateway":{"KEY":"value"}}' });
        return z.NEVER;
      }
    }),
  natsUrl: z.string().optional(),
  /**
   * Volume storage for a machine initialised without `--storage`: `zfs:<pool>`, `btrfs:<path>` or
   * `dir:<path>` (default `dir:<state dir>/volumes`: no snapshots).
   */
  storage: z.string().optional(),
  /**
   * How often the running daemon checks its components between full passes and repairs one that
   * was removed or stays stopped (0 turns the live repair off: repairs wait for the next start).
   */
  repairIntervalMs: z.coerce.number().int().min(0).default(10_000),
  /**
   * Where ployzd serves its Prometheus metrics (`GET /metrics`): `host:port` (`[::1]:port` for
   * IPv6; port 0: any free port, for tests), or `off`. Loopback by default: scrape it on the machine.
   */
  metricsListen: z
    .string()
    .default('127.0.0.1:9190')
    .transform((text, ctx) => {
      if (text === 'off') return null;
      const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
      const port = Number(m?.[3]);
      if (m === null || port > 65535) {
        ctx.addIssue({ code: 'custom', message: 'must be host:port (e.g. 127.0.0.1:9190) or off' });
        return z.NEVER;
      }
      return { host: m[1] ?? m[2] ?? '', port };
    }),
  /**
   * The ACME directory `tls = "auto"` routes get certificates from (docs/adr/0015-acme.md): its
   * URL, or `off` (no renewer on this machine; stored certificates are still handed to the
   * gateway). Default: Let's Encrypt production.
   */
  acmeDirectory: z
    .string()
    .default(LETS_ENCRYPT_DIRECTORY)
    .transform((text, ctx) => {
      if (text === 'off') return null;
      if (!/^https?:\/\/[^\s/]+/.test(text)) {
        ctx.addIssue({ code: 'custom', message: 'must be the directory URL (https://…/directory) or off' });
        return z.NEVER;
      }
      return text;
    }),
  /** PEM file of a CA trusted for the ACME directory's own HTTPS, beside the system's (a test directory). */
  acmeCaFile: z.string().min(1).optional(),
  /** Contact address registered with the ACME account (expiry notices); none by default. */
  acmeEmail: z.email().optional(),
  /** How often the renewer looks at every `tls = "auto"` hostname. */
  acmeIntervalMs: z.coerce.number().int().min(100).default(30_000),
  /**
   * How often one ACME request that failed (unreachable, 5xx, 429) is retried before the order
   * counts as failed (acme-client waits 5 s × the attempt between them, or Retry-After).
   */
  acmeRequestRetries: z.coerce.number().int().min(0).max(10).default(5),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
});
export type DaemonConfig = z.infer<typeof DaemonConfig>;

const KEYS = Object.keys(DaemonConfig.shape) as (keyof typeof DaemonConfig.shape)[];

function envName(key: string): string {
  return `PLOYZ_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}
function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** Parse env + `--flag value` / `--flag=value` arguments. Throws CONFIG_INVALID naming the field. */
export function parseDaemonConfig(argv: string[], env: NodeJS.ProcessEnv): DaemonConfig {
  const raw: Record<string, string> = {};
  for (const key of KEYS) {
    const value = env[envName(key)];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const byFlag = new Map(KEYS.map((k) => [flagName(k), k]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (!arg.startsWith('--')) throw new PloyzError('CONFIG_INVALID', `unexpected argument ${arg}`);
    const [flag = '', inline] = arg.slice(2).split(/=(.*)/s, 2);
    const key = byFlag.get(flag);
    if (!key) {
      throw new PloyzError(
        'CONFIG_INVALID',
        `unknown flag --${flag}; known: ${[...byFlag.keys()].map((f) => `--${f}`).join(' ')}`,
      );
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new PloyzError('CONFIG_INVALID', `--${flag} needs a value`);
    raw[key] = value;
  }
  const parsed = DaemonConfig.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = String(issue?.path[0] ?? '');
    throw new PloyzError(
      'CONFIG_INVALID',
      `invalid --${flagName(field)} (${envName(field)}): ${issue?.message ?? 'invalid'}`,
      { details: { field } },
    );
  }
  return parsed.data;
}
