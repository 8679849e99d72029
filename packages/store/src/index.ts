/**
 * @ployz/store — durable state on NATS JetStream (DESIGN.md §4).
 *
 * Open:     `openStore({ servers, installation, authority, replicas })` → `Store` (connects,
 *           reconnects forever with jittered backoff; `waitOnFirstConnect` to wait for NATS at
 *           start; creates the assets idempotently); or `Store.fromConnection(nc, …)`.
 * Records:  `store.machines | revisions | releases | instances | deployStatus | deployPhases |
 *           volumes | locks` are `RecordBucket`s: `get(...keyParts)`, `getByKey`, `create(record)`,
 *           `update(record, expectedRevision)`, `save(record, revision|null)`,
 *           `delete(key, expectedRevision)`, `modify(parts, fn)`, `list(filter)`, `keys(filter)`.
 *           Values are zod-validated both ways; a lost CAS race is `STORE_CONFLICT`.
 *           Key scheme (`keys`): machine `<id>`, revision `<ns>.<svc>.<rev>`, release `<ns>.<svc>`,
 *           instance `<ns>.<svc>.<inst>`, deploy status `<deploy>`, phase `<deploy>.<phase>`,
 *           volume `<ns>.<vol>`, lock `cp.lock.deploy.<ns>`; tokens escaped by `escapeToken`.
 * Commits:  `store.commits.append(commit)` (create-only; identical twice = no-op with
 *           `duplicate: true`; different payload, same id = `COMMIT_CONFLICT`), `get(ns, id)`,
 *           `list(ns, { afterSeq })` (reads only that namespace), `lastSeq()`.
 * Leases:   `store.leases.acquire(store.deployLockKey(ns), { owner, ttlMs })` → `Lease` or
 *           `DEPLOY_LOCK_HELD` (details: holder, expires_at); `renew(lease)` / `release(lease)`
 *           → `LEASE_LOST` when taken over.
 * Routing:  `store.routing` implements `RoutingFeed` (`snapshot()`, `follow(fromSeq, signal)`,
 *           `lastSeq()`), plus `append(event)` and `appendAfterWrite(write, event)`. A broken
 *           follow throws `ROUTING_FEED_BROKEN` (details.reason).
 * Assets:   `ensureAssets(nc, scope, replicas, routingRetention)` (routing events keep
 *           max_msgs / max_age: DEFAULT_ROUTING_RETENTION, or the policy given, also applied to an
 *           existing stream; `routingRetentionFromEnv(env)`), `setReplicas(nc, scope, n)`, `assetNames(scope)`,
 *           `validateReplicas(n)` (1, 3, 5; else `REPLICAS_INVALID`).
 * Durable:  `durabilitySettings(serverVersion, replicas)` → nats-server `jetstream {}` settings
 *           (docs/adr/0003-jetstream-durability.md).
 * Errors:   typed store errors are published on `node:diagnostics_channel` `STORE_ERROR_CHANNEL`
 *           (`StoreErrorReport`) while observed (ployzd's metrics).
 * Migrate:  `planMigration(source, scope)` (digests, read only), `migrateStore({ source, target,
 *           scope, replicas: 3 })` (R1 → R3 copy, verified; STORE_MIGRATION_FAILED /
 *           STORE_MIGRATION_TARGET_IN_USE), `freezeSource` (seal the old store: its writes are
 *           STORE_PROMOTING) + `catchUpMigration` (the delta since verification), `finishMigration`.
 * Quorum:   at R3 a write without quorum is STORE_NO_QUORUM (`details.outcome`: not_written |
 *           unknown); `requestTimeoutMs` bounds the wait. A connection to a leaf of the cluster
 *           says so with `reachesClusterThroughLeaf(nc, isLeaf)`.
 * State:    `store.connection.state` / `onState(fn)`: connecting | connected | reconnecting |
 *           disconnected | closed.
 */
export {
  DEFAULT_ROUTING_RETENTION,
  type EnsureAssetsResult,
  ensureAssets,
  type Replicas,
  type RoutingRetention,
  routingRetentionFromEnv,
  setReplicas,
  validateReplicas,
} from './assets.ts';
export { type AppendResult, DeployCommits, type StoredCommit } from './commits.ts';
export {
  backoffMs,
  type ConnectionState,
  type ConnectOptions,
  connectStore,
  monitor,
  type NkeySeedSource,
  nkeyAuth,
  type StoreConnection,
} from './connection.ts';
export { STORE_ERROR_CHANNEL, type StoreErrorReport } from './diagnostics.ts';
export { type DurabilitySettings, durabilitySettings, parseServerVersion } from './durability.ts';
export {
  type AssetNames,
  assetNames,
  escapeToken,
  inboxPrefixOf,
  joinTokens,
  keys,
  type Scope,
  streamSubjects,
  subjectPrefix,
  unescapeToken,
  validateScope,
} from './keys.ts';
export { type AcquireOptions, DEFAULT_LEASE_TTL_MS, FENCE_KEY, type Lease, Leases } from './lease.ts';
export {
  type AssetDigest,
  type AssetRef,
  type CatchUpOptions,
  catchUpMigration,
  digestAsset,
  finishMigration,
  freezeSource,
  type MigrateOptions,
  type MigrationPlan,
  type MigrationProgress,
  type MigrationReport,
  migrateStore,
  migrationAssets,
  migrationMarkerBucket,
  planMigration,
} from './migrate.ts';
export {
  assertNotPromoting,
  authoritativeStore,
  blocksDeploys,
  PROMOTION_TTL_MS,
  type PromoteOptions,
  PromotionPhase,
  PromotionRecord,
  type PromotionResult,
  promoteStore,
  promotionBucket,
  promotionRecords,
  readPromotion,
} from './promotion.ts';
export { reachesClusterThroughLeaf } from './quorum.ts';
export { RecordBucket, type Versioned } from './record-bucket.ts';
export {
  type AssetReplication,
  assetReplication,
  type StoreReplication,
  storeReplication,
} from './replication.ts';
export { type FeedBreak, feedBroken, RoutingEvents, type SnapshotSources } from './routing-feed.ts';
export { type OpenStoreOptions, openStore, Store } from './store.ts';
