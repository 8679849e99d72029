/**
 * Creates the JetStream assets of DESIGN.md §4 idempotently. Existing assets are left as they
 * are (their replica count changes only through `setReplicas`, an explicit operator command),
 * except the routing event stream's retention limits, which follow the configured policy.
 */
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { PloyzError } from '@ployz/types';
import { type AssetNames, assetNames, type Scope, streamSubjects } from './keys.ts';

export type Replicas = 1 | 3 | 5;

export function validateReplicas(replicas: number): Replicas {
  if (replicas === 1 || replicas === 3 || replicas === 5) return replicas;
  throw new PloyzError(
    'REPLICAS_INVALID',
    `replica count ${replicas} is not allowed: use 1, 3 or 5 (an even count cannot keep a JetStream quorum when half the machines are gone)`,
    { details: { replicas, allowed: [1, 3, 5] } },
  );
}

/**
 * How many routing events `routing_events_<auth>` keeps. The events are rebuildable (seed 003):
 * a follower whose position was trimmed away gets `ROUTING_FEED_BROKEN` (reason gap) and
 * rebuilds from a new snapshot of the KV buckets. 0 means no limit of that kind.
 */
export interface RoutingRetention {
  maxMsgs: number;
  maxAgeMs: number;
}

const ROUTING_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

export const DEFAULT_ROUTING_RETENTION: RoutingRetention = {
  maxMsgs: 100_000,
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
};

function validateRetention(r: RoutingRetention): RoutingRetention {
  for (const [k, v] of Object.entries(r)) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `routing retention ${k} must be a whole number ≥ 0, got ${v}`,
        {
          details: { [k]: v },
        },
      );
    }
  }
  if (r.maxAgeMs !== 0 && r.maxAgeMs < ROUTING_DUPLICATE_WINDOW_MS) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      `routing retention maxAgeMs must be 0 (no limit) or at least the ${ROUTING_DUPLICATE_WINDOW_MS} ms duplicate window, got ${r.maxAgeMs}`,
      { details: { maxAgeMs: r.maxAgeMs } },
    );
  }
  return r;
}

function routingLimits(r: RoutingRetention): Pick<StreamConfig, 'max_msgs' | 'max_age'> {
  return { max_msgs: r.maxMsgs === 0 ? -1 : r.maxMsgs, max_age: r.maxAgeMs * NANOS_PER_MS };
}

/** KV buckets and how much history each keeps (1 = just the current value). */
const BUCKETS = [
  'machines',
  'invites',
  'subnets',
  'deployStatus',
  'deployPhases',
  'revisions',
  'releases',
  'instances',
  'volumes',
  'locks',
  'acmeCerts',
  'acmeChallenges',
  'acmeRenewals',
  'acmeAccounts',
  'registryAuth',
] as const satisfies readonly (keyof AssetNames)[];
export type BucketAsset = (typeof BUCKETS)[number];
/** The KV buckets every store has (a migration copies each). */
export const BUCKET_ASSETS: readonly BucketAsset[] = BUCKETS;

const NANOS_PER_MS = 1_000_000;

function streamConfigs(
  scope: Scope,
  names: AssetNames,
  replicas: Replicas,
  retention: RoutingRetention,
): Partial<StreamConfig>[] {
  const subjects = streamSubjects(scope);
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: replicas,
    discard: DiscardPolicy.Old,
    allow_direct: true,
  };
  return [
    {
      ...common,
      name: names.deployCommits,
      description: 'immutable deploy commits (create-only, dedup by commit id)',
      subjects: [`${subjects.commits}.>`],
      // Immutable: commits are never deleted or purged; dedup window backs up the per-subject check.
      deny_delete: true,
      deny_purge: true,
      duplicate_window: 10 * 60 * 1000 * NANOS_PER_MS,
    },
    {
      ...common,
      name: names.routingEvents,
      description: 'ordered routing facts derived from commits; rebuildable',
      subjects: [subjects.routingEvents],
      deny_delete: true,
      duplicate_window: ROUTING_DUPLICATE_WINDOW_MS * NANOS_PER_MS,
      ...routingLimits(retention),
    },
  ];
}

export interface EnsureAssetsResult {
  names: AssetNames;
  created: string[];
  existing: string[];
}

export async function ensureAssets(
  nc: NatsConnection,
  scope: Scope,
  replicasInput: number = 1,
  retention?: RoutingRetention,
): Promise<EnsureAssetsResult> {
  const replicas = validateReplicas(replicasInput);
  const limits = retention === undefined ? null : routingLimits(validateRetention(retention));
  const names = assetNames(scope);
  const jsm = await jetstreamManager(nc);
  const created: string[] = [];
  const existing: string[] = [];
  for (const cfg of streamConfigs(scope, names, replicas, retention ?? DEFAULT_ROUTING_RETENTION)) {
    const name = cfg.name ?? '';
    if (await streamExists(jsm, name)) {
      existing.push(name);
      if (name === names.routingEvents) await applyRoutingLimits(jsm, name, limits);
      continue;
    }
    await jsm.streams.add({ ...cfg, name });
    created.push(name);
  }
  const kvm = new Kvm(nc);
  for (const bucket of BUCKETS) {
    const name = names[bucket];
    if (await streamExists(jsm, `KV_${name}`)) {
      existing.push(name);
      continue;
    }
    await kvm.create(name, { replicas, history: 1, storage: StorageType.File });
    created.push(name);
  }
  return { names, created, existing };
}

/** The explicit operator command: change the replica count of every asset. */
export async function setReplicas(nc: NatsConnection, scope: Scope, replicasInput: number): Promise<void> {
  const replicas = validateReplicas(replicasInput);
  const names = assetNames(scope);
  const jsm = await jetstreamManager(nc);
  const streams = [names.deployCommits, names.routingEvents, ...BUCKETS.map((b) => `KV_${names[b]}`)];
  for (const stream of streams) {
    const info = await jsm.streams.info(stream);
    if (info.config.num_replicas !== replicas) {
      await jsm.streams.update(stream, { ...info.config, num_replicas: replicas });
    }
  }
}

/**
 * Brings an existing routing stream to the retention given (trimming it now if it shrank). With
 * none given, only a stream without any limit (created before retention existed) gets the
 * default, so openers that pass nothing never undo a configured policy.
 */
async function applyRoutingLimits(
  jsm: JetStreamManager,
  name: string,
  configured: Pick<StreamConfig, 'max_msgs' | 'max_age'> | null,
): Promise<void> {
  const info = await jsm.streams.info(name);
  const unbounded = info.config.max_msgs <= 0 && info.config.max_age === 0;
  const limits = configured ?? (unbounded ? routingLimits(DEFAULT_ROUTING_RETENTION) : null);
  if (limits === null) return;
  if (info.config.max_msgs === limits.max_msgs && info.config.max_age === limits.max_age) return;
  await jsm.streams.update(name, { ...info.config, ...limits });
}

/**
 * The routing retention of `PLOYZ_ROUTING_EVENTS_MAX_MSGS` / `PLOYZ_ROUTING_EVENTS_MAX_AGE_MS`
 * (each defaulting to DEFAULT_ROUTING_RETENTION), or undefined when neither is set.
 */
export function routingRetentionFromEnv(
  env: Record<string, string | undefined>,
): RoutingRetention | undefined {
  const msgs = env.PLOYZ_ROUTING_EVENTS_MAX_MSGS;
  const age = env.PLOYZ_ROUTING_EVENTS_MAX_AGE_MS;
  if (msgs === undefined && age === undefined) return undefined;
  return validateRetention({
    maxMsgs: msgs === undefined ? DEFAULT_ROUTING_RETENTION.maxMsgs : Number(msgs),
    maxAgeMs: age === undefined ? DEFAULT_ROUTING_RETENTION.maxAgeMs : Number(age),
  });
}

async function streamExists(jsm: JetStreamManager, name: string): Promise<boolean> {
  try {
    await jsm.streams.info(name);
    return true;
  } catch (err) {
    if (isStreamNotFound(err)) return false;
    throw err;
  }
}

export function isStreamNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  const apiCode = (err as { api_error?: { err_code?: number } }).api_error?.err_code;
  return apiCode === 10059 || code === '404' || /stream not found/i.test(err.message);
}
