/**
 * Creates the JetStream assets of DESIGN.md §4 idempotently. Existing assets are left as they
 * are (their replica count changes only through `setReplicas`, an explicit operator command).
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

/** KV buckets and how much history each keeps (1 = just the current value). */
const BUCKETS = [
  'machines',
  'deployStatus',
  'deployPhases',
  'revisions',
  'releases',
  'instances',
  'volumes',
  'locks',
] as const satisfies readonly (keyof AssetNames)[];
export type BucketAsset = (typeof BUCKETS)[number];

const NANOS_PER_MS = 1_000_000;

function streamConfigs(scope: Scope, names: AssetNames, replicas: Replicas): Partial<StreamConfig>[] {
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
      duplicate_window: 2 * 60 * 1000 * NANOS_PER_MS,
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
): Promise<EnsureAssetsResult> {
  const replicas = validateReplicas(replicasInput);
  const names = assetNames(scope);
  const jsm = await jetstreamManager(nc);
  const created: string[] = [];
  const existing: string[] = [];
  for (const cfg of streamConfigs(scope, names, replicas)) {
    const name = cfg.name ?? '';
    if (await streamExists(jsm, name)) {
      existing.push(name);
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
