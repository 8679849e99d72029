/**
 * The manifest as a user writes it (TOML or JSON — one schema). Strict: unknown fields are
 * errors, so typos surface. Checks that have their own issue code attach it as
 * `params.code`; manifest-parse.ts maps every zod issue to a `ManifestIssue`.
 * Nothing here may put an env value into a message.
 */
import { z } from 'zod';
import { PULL_POLICIES, parseImageRef } from './image-ref.ts';
import type { ManifestIssueCode } from './manifest-issues.ts';
import { parseDuration, parseSize } from './quantities.ts';

function coded(code: ManifestIssueCode, message: string) {
  return { message, params: { code } };
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const HOST_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

export function isDnsLabel(s: string): boolean {
  return s.length <= 63 && DNS_LABEL.test(s);
}

export function isHostname(s: string): boolean {
  const host = s.toLowerCase();
  if (host.length === 0 || host.length > 253) return false;
  const labels = host.split('.');
  return labels.every(
    (l, i) => (l === '*' && i === 0 && labels.length > 1) || (l.length <= 63 && HOST_LABEL.test(l)),
  );
}

export const DnsLabelInput = z
  .string()
  .refine(
    isDnsLabel,
    coded('NAME_NOT_DNS_LABEL', 'must be a DNS label: lowercase letters, digits and -, at most 63'),
  );

const OWNER = /^(\d{1,10}):(\d{1,10})$/;
const MAX_ID = 2 ** 31 - 1;

/** `"uid:gid"` → numbers, or null when malformed or out of range. */
export function parseOwner(text: string): { uid: number; gid: number } | null {
  const m = OWNER.exec(text);
  if (!m) return null;
  const uid = Number(m[1]);
  const gid = Number(m[2]);
  return uid <= MAX_ID && gid <= MAX_ID ? { uid, gid } : null;
}

/** `"0750"` / `"750"` → 0o750, or null (permission bits only: at most 0777). */
export function parseMode(text: string): number | null {
  if (!/^0?[0-7]{3}$/.test(text)) return null;
  return Number.parseInt(text, 8);
}

const PORT_NAME = /^[a-z][a-z0-9-]{0,14}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const PortNumber = z.number().int().min(1).max(65535);
const PortRef = z.string();

const DurationInput = z
  .union([z.string(), z.number()])
  .refine(
    (v) => typeof v === 'string' && parseDuration(v) !== null,
    coded('DURATION_INVALID', 'write a duration as a string with a unit: "500ms", "10s", "1m30s", "2h"'),
  );

const SizeInput = z
  .union([z.string(), z.number()])
  .refine(
    (v) => parseSize(v) !== null,
    coded('SIZE_INVALID', 'write a size like "512MiB", "10GiB", "2GB" or a whole number of bytes'),
  );

const PositiveSizeInput = SizeInput.refine(
  (v) => (parseSize(v) ?? 1) > 0,
  coded('OUT_OF_RANGE', 'a size must be greater than zero'),
);

/** Docker's reference grammar (image-ref.ts): `[registry/]repository[:tag][@digest]`. */
const ImageInput = z.string().superRefine((s, ctx) => {
  const parsed =
    s.length > 512 ? { ok: false as const, reason: 'longer than 512 characters' } : parseImageRef(s);
  if (!parsed.ok) {
    ctx.addIssue({
      code: 'custom',
      message: `${parsed.reason}; write an image like "ployz/hello:latest" or "registry.example.com/team/app:1.2"`,
      params: { code: 'IMAGE_INVALID' },
    });
  }
});

const RoutePathInput = z
  .string()
  .refine(
    (s) => s.startsWith('/') && s.length <= 1024 && !/[\s?#]/.test(s),
    coded('ROUTE_PATH_INVALID', 'a path starts with / and has no spaces, ? or #, e.g. "/api"'),
  );

const HostnameInput = z
  .string()
  .refine(
    isHostname,
    coded('HOSTNAME_INVALID', 'a hostname is a DNS name like "app.example.com" (a leading "*." is allowed)'),
  );

const MountTargetInput = z
  .string()
  .refine(
    (s) =>
      s.startsWith('/') && s !== '/' && s.length <= 1024 && !s.split('/').includes('..') && !s.includes('\0'),
    coded('MOUNT_TARGET_INVALID', 'a mount target is an absolute path inside the container, e.g. "/data"'),
  );

const RegionInput = z.string().min(1).max(63);

/** `{ NAME = "value" }`. Values may be strings, numbers or booleans (converted to strings). */
export const EnvInput = z.record(z.string(), z.unknown()).superRefine((env, ctx) => {
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name)) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'env names are letters, digits and _, not starting with a digit',
        params: { code: 'ENV_NAME_INVALID' },
      });
    }
    const t = typeof value;
    if (t !== 'string' && !(t === 'number' && Number.isFinite(value)) && t !== 'boolean') {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'an env value must be a string (numbers and booleans are converted); quote it',
        params: { code: 'ENV_VALUE_INVALID' },
      });
    }
  }
});

const PortEntryInput = z.preprocess(
  (v) => (typeof v === 'number' ? { port: v } : v),
  z.strictObject({ port: PortNumber, protocol: z.enum(['tcp', 'udp']).optional() }),
);

/** `{ http = 8080, dns = { port = 53, protocol = "udp" } }`. */
export const PortsInput = z.record(z.string(), PortEntryInput).superRefine((ports, ctx) => {
  for (const name of Object.keys(ports)) {
    if (!PORT_NAME.test(name)) {
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'a port name is lowercase letters, digits and -, starts with a letter, at most 15',
        params: { code: 'PORT_NAME_INVALID' },
      });
    }
  }
});

function exactlyOne<T extends Record<string, unknown>>(
  keys: readonly (keyof T & string)[],
  code: ManifestIssueCode,
  message: string,
) {
  return (value: T, ctx: z.RefinementCtx) => {
    const present = keys.filter((k) => value[k] !== undefined);
    if (present.length !== 1) ctx.addIssue({ code: 'custom', path: [], message, params: { code } });
  };
}

export const HttpRouteInput = z.strictObject({
  hostnames: z.array(HostnameInput).min(1).max(100),
  path: RoutePathInput.optional(),
  port: PortRef.optional(),
  /** `"auto"`: the installation's ACME directory issues and renews its certificates. */
  tls: z.literal('auto').optional(),
  /** Plain HTTP requests for these hostnames are answered 308 to https (needs HTTPS for them). */
  https_redirect: z.boolean().optional(),
});

export const TcpRouteInput = z.strictObject({ listen: PortNumber, port: PortRef.optional() });

export const RouteInput = z
  .strictObject({ http: HttpRouteInput.optional(), tcp: TcpRouteInput.optional() })
  .superRefine(
    exactlyOne(['http', 'tcp'], 'ROUTE_KIND_INVALID', 'a route has exactly one of `http` or `tcp`'),
  );
export type RouteInput = z.infer<typeof RouteInput>;

export const ReadinessInput = z
  .strictObject({
    http: z.strictObject({ path: RoutePathInput, port: PortRef.optional() }).optional(),
    tcp: z.strictObject({ port: PortRef.optional() }).optional(),
    exec: z.strictObject({ command: z.array(z.string()).min(1) }).optional(),
    interval: DurationInput.optional(),
    timeout: DurationInput.optional(),
    retries: z.number().int().min(1).max(1000).optional(),
    start_period: DurationInput.optional(),
    start_timeout: DurationInput.optional(),
  })
  .superRefine(
    exactlyOne(
      ['http', 'tcp', 'exec'],
      'READINESS_KIND_INVALID',
      'readiness has exactly one of `http`, `tcp` or `exec`',
    ),
  );
export type ReadinessInput = z.infer<typeof ReadinessInput>;

export const PlacementInput = z
  .strictObject({
    mode: z.enum(['replicated', 'global']).optional(),
    replicas: z.number().int().min(0).max(1000).optional(),
    regions: z.array(RegionInput).optional(),
  })
  .superRefine((p, ctx) => {
    if (p.mode === 'global' && p.replicas !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['replicas'],
        message: 'a global service runs one instance per eligible machine; remove `replicas`',
        params: { code: 'PLACEMENT_INVALID' },
      });
    }
  });
export type PlacementInput = z.infer<typeof PlacementInput>;

export const MountInput = z
  .strictObject({
    volume: DnsLabelInput.optional(),
    tmpfs: z.strictObject({ size: PositiveSizeInput.optional() }).optional(),
    target: MountTargetInput,
    read_only: z.boolean().optional(),
  })
  .superRefine(
    exactlyOne(['volume', 'tmpfs'], 'MOUNT_KIND_INVALID', 'a mount has exactly one of `volume` or `tmpfs`'),
  );
export type MountInput = z.infer<typeof MountInput>;

export const ResourcesInput = z.strictObject({
  cpus: z.number().positive().max(1024).optional(),
  memory: PositiveSizeInput.optional(),
});

export const ServiceInput = z.strictObject({
  name: DnsLabelInput,
  image: ImageInput,
  /** Only with an image that names its registry host (manifest-rules.ts). */
  pull_policy: z.enum(PULL_POLICIES).optional(),
  command: z.array(z.string()).optional(),
  entrypoint: z.array(z.string()).optional(),
  env: EnvInput.optional(),
  ports: PortsInput.optional(),
  routes: z.array(RouteInput).optional(),
  readiness: ReadinessInput.optional(),
  placement: PlacementInput.optional(),
  mounts: z.array(MountInput).optional(),
  resources: ResourcesInput.optional(),
  restart: z.enum(['always', 'unless_stopped', 'on_failure', 'never']).optional(),
  stop_grace: DurationInput.optional(),
});
export type ServiceInput = z.infer<typeof ServiceInput>;

/** `"uid:gid"`, each a number below 2^31 (e.g. `"10001:10001"`). */
const OwnerInput = z
  .string()
  .refine(
    (s) => parseOwner(s) !== null,
    coded('VALUE_INVALID', 'write an owner as "uid:gid" with numeric ids, e.g. "10001:10001"'),
  );

/** Octal permission bits as a string, e.g. `"0750"` (no setuid/setgid/sticky). */
const ModeInput = z
  .string()
  .refine(
    (s) => parseMode(s) !== null,
    coded('VALUE_INVALID', 'write a mode as an octal string, e.g. "0750"'),
  );

export const VolumeInput = z.strictObject({
  name: DnsLabelInput,
  quota: PositiveSizeInput.optional(),
  scope: z.enum(['single', 'per_slot']).optional(),
  owner: OwnerInput.optional(),
  mode: ModeInput.optional(),
  /** Snapshots of committed deploys kept per volume (the newest; the current one always). */
  keep_snapshots: z.number().int().min(1).max(1000).optional(),
});
export type VolumeInput = z.infer<typeof VolumeInput>;

export const PhaseInput = z.strictObject({
  id: DnsLabelInput,
  services: z.array(z.string()).optional(),
  volumes: z.array(z.string()).optional(),
  after: z.array(z.string()).optional(),
  commit_policy: z.enum(['end_of_deploy', 'checkpoint']).optional(),
});
export type PhaseInput = z.infer<typeof PhaseInput>;

/** The top level; list items are validated one by one so one bad service hides nothing else. */
export const ManifestInput = z.strictObject({
  namespace: DnsLabelInput,
  services: z.array(z.unknown()).min(1).max(1000),
  volumes: z.array(z.unknown()).max(1000).optional(),
  phases: z.array(z.unknown()).max(1000).optional(),
});
