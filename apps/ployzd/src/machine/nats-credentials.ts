/**
 * NATS identities of one machine (docs/adr/0011-trust-model.md): one NKey user per component
 * (ployzd, gateway, dns), generated on first start, seeds kept root-only under the state dir
 * (`nats-auth/<id>.nk`, dir 0700, files 0600). Each edge app gets only its own seed, as a file in
 * a directory mounted read-only into its container (`nats-auth/mount/<id>/seed`, owned by the
 * image's user), and reads it again at every (re)connect. ployz-nats gets only the public keys
 * and the permissions (`nats-conf/auth.conf`, included by the server settings `nats-conf/nats.conf`
 * that the data plane writes; mounted read-only; reloaded with SIGHUP); it has no
 * anonymous user, so a connection without credentials is refused.
 *
 * Rotation (`ployzctl machine credentials rotate`) is two file states, each followed by a reload:
 * `prepareRotation` writes new seeds beside the old (`<id>.nk.next`) and a config that accepts
 * both; `promoteRotation` makes the new seeds current (the edge mounts too) and drops the old
 * keys — nats-server then closes the connections still using them, and each client reconnects
 * with the seed it reads now. A daemon that stops between the two finds `.next` files at start
 * and promotes them.
 */

import { readFileSync } from 'node:fs';
import { chmod, chown, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';
import { assetNames, inboxPrefixOf, type Scope } from '@ployz/store';
import { readIfPresent, writeAtomic } from './atomic-write.ts';

export const NATS_IDENTITIES = ['ployzd', 'gateway', 'dns'] as const;
export type NatsIdentity = (typeof NATS_IDENTITIES)[number];

export interface NatsCredentials {
  /** NKey seeds (`SU…`): secrets. */
  seeds: Record<NatsIdentity, string>;
  /** Public keys (`U…`): what the server config names. */
  publicKeys: Record<NatsIdentity, string>;
  /** The next public keys while a rotation is prepared and not yet promoted; else null. */
  pending: Record<NatsIdentity, string> | null;
}

/** The user the edge images run as (images/base/Dockerfile: `ployz`, 10001): owns its seed mount. */
export const EDGE_UID = 10001;
/** Where an edge app's seed directory is mounted in its container, and the file in it. */
export const NATS_SEED_MOUNT = '/run/ployz/nats';
export const NATS_SEED_FILE = `${NATS_SEED_MOUNT}/seed`;

export function natsAuthDir(stateDir: string): string {
  return join(stateDir, 'nats-auth');
}
/** Mounted into ployz-nats at NATS_CONFIG_DIR: public keys and permissions only, no secret. */
export function natsConfDir(stateDir: string): string {
  return join(stateDir, 'nats-conf');
}
/** The host directory mounted (read-only) into an edge component's container at NATS_SEED_MOUNT. */
export function natsSeedMountDir(stateDir: string, id: Exclude<NatsIdentity, 'ployzd'>): string {
  return join(natsAuthDir(stateDir), 'mount', id);
}
export const NATS_CONFIG_DIR = '/etc/ployz/nats';
/** The server settings (dataplane/component-spec.ts `natsServerSettings`), which include the auth file. */
export const NATS_CONFIG_FILE = `${NATS_CONFIG_DIR}/nats.conf`;
/** Public keys and permissions, written here; named relative to nats.conf. */
export const NATS_AUTH_FILE = 'auth.conf';

export interface SubjectPermissions {
  publish: readonly string[];
  subscribe: readonly string[];
}

/** The streams behind the routing assets the edge apps follow (routing/projection inputs). */
export function routingStreams(scope: Scope): string[] {
  const n = assetNames(scope);
  return [`KV_${n.machines}`, `KV_${n.revisions}`, `KV_${n.releases}`, `KV_${n.instances}`, n.routingEvents];
}

/**
 * The edge apps read the routing assets and nothing else: JetStream info, gets (direct and
 * stream message gets) and their own consumers (KV watches, the routing events feed) on those
 * streams only, replies on its own inbox prefix (`inboxPrefixOf`). No `$KV.>` publish (a KV put), no stream admin, no other
 * stream (deploy status, volumes, locks), no RPC subject.
 */
export function edgePermissions(scope: Scope, identity: 'gateway' | 'dns'): SubjectPermissions {
  const publish = ['$JS.API.INFO', '$JS.FC.>'];
  for (const s of routingStreams(scope)) {
    publish.push(
      `$JS.API.STREAM.INFO.${s}`,
      `$JS.API.STREAM.MSG.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}`,
      `$JS.API.DIRECT.GET.${s}.>`,
      `$JS.API.CONSUMER.CREATE.${s}`,
      `$JS.API.CONSUMER.CREATE.${s}.>`,
      `$JS.API.CONSUMER.INFO.${s}.*`,
      `$JS.API.CONSUMER.DELETE.${s}.*`,
      `$JS.API.CONSUMER.MSG.NEXT.${s}.*`,
    );
  }
  return { publish, subscribe: [`${inboxPrefixOf(identity)}.>`] };
}

/** ployzd owns the store (every asset, leases, commits, RPC): all subjects. */
export const PLOYZD_PERMISSIONS: SubjectPermissions = { publish: ['>'], subscribe: ['>'] };

export function permissions(scope: Scope): Record<NatsIdentity, SubjectPermissions> {
  return {
    ployzd: PLOYZD_PERMISSIONS,
    gateway: edgePermissions(scope, 'gateway'),
    dns: edgePermissions(scope, 'dns'),
  };
}

const list = (subjects: readonly string[]) => `[${subjects.map((s) => JSON.stringify(s)).join(', ')}]`;

/** The nats-server config for these keys (pure); `pending` keys are accepted beside them. */
export function natsServerConfig(
  publicKeys: Record<NatsIdentity, string>,
  scope: Scope,
  pending: Record<NatsIdentity, string> | null = null,
): string {
  const all = permissions(scope);
  const user = (id: NatsIdentity, key: string, note: string) => {
    const p = all[id];
    return `    # ${id}${note}\n    { nkey: ${key}, permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
  };
  const users = NATS_IDENTITIES.flatMap((id) => [
    user(id, publicKeys[id], ''),
    // A promotion interrupted half-way leaves some next keys already current: named once.
    ...(pending && pending[id] !== publicKeys[id]
      ? [user(id, pending[id], ' (next, rotation in progress)')]
      : []),
  ]);
  return `# Written by ployzd (apps/ployzd/src/machine/nats-credentials.ts); no anonymous user.\nauthorization {\n  users: [\n${users.join('\n')}\n  ]\n}\n`;
}

async function readSeed(path: string): Promise<string | null> {
  return (await readIfPresent(path))?.trim() ?? null;
}

const publicKeyOf = (seed: string) => nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey();
const newSeed = () => new TextDecoder().decode(nkeys.createUser().getSeed());
const seedFile = (stateDir: string, id: NatsIdentity, next = false) =>
  join(natsAuthDir(stateDir), `${id}.nk${next ? '.next' : ''}`);

/** The next seeds of a prepared rotation, or null when none is in progress. */
async function readPending(stateDir: string): Promise<Record<NatsIdentity, string> | null> {
  const found = new Map<NatsIdentity, string>();
  for (const id of NATS_IDENTITIES) {
    const seed = await readSeed(seedFile(stateDir, id, true));
    if (seed !== null) found.set(id, seed);
  }
  if (found.size === 0) return null;
  const seeds = {} as Record<NatsIdentity, string>;
  for (const id of NATS_IDENTITIES) {
    const seed = found.get(id);
    if (seed !== undefined) seeds[id] = seed;
    else {
      // A rotation interrupted while it wrote the next seeds: the missing ones are created now.
      seeds[id] = newSeed();
      await writeAtomic(seedFile(stateDir, id, true), `${seeds[id]}\n`, 0o600);
    }
  }
  return seeds;
}

const mapKeys = (seeds: Record<NatsIdentity, string>) =>
  Object.fromEntries(NATS_IDENTITIES.map((id) => [id, publicKeyOf(seeds[id])])) as Record<
    NatsIdentity,
    string
  >;

/** Writes each edge app's current seed into its mount directory and the server config. */
async function publish(
  stateDir: string,
  scope: Scope,
  seeds: Record<NatsIdentity, string>,
  pending: Record<NatsIdentity, string> | null,
): Promise<NatsCredentials> {
  for (const id of ['gateway', 'dns'] as const) {
    const dir = natsSeedMountDir(stateDir, id);
    await mkdir(dir, { recursive: true, mode: 0o500 });
    await chown(dir, EDGE_UID, EDGE_UID);
    await chmod(dir, 0o500);
    await writeAtomic(join(dir, 'seed'), `${seeds[id]}\n`, 0o400, EDGE_UID);
  }
  const publicKeys = mapKeys(seeds);
  const pendingKeys = pending ? mapKeys(pending) : null;
  const conf = natsConfDir(stateDir);
  await mkdir(conf, { recursive: true, mode: 0o755 });
  await writeAtomic(join(conf, NATS_AUTH_FILE), natsServerConfig(publicKeys, scope, pendingKeys), 0o644);
  return { seeds, publicKeys, pending: pendingKeys };
}

/**
 * Reads the machine's NATS credentials, creating the missing ones; rewrites the edge seed mounts
 * and the server config (accepting the next keys too while a rotation is prepared).
 */
export async function ensureNatsCredentials(stateDir: string, scope: Scope): Promise<NatsCredentials> {
  const dir = natsAuthDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const seeds = {} as Record<NatsIdentity, string>;
  for (const id of NATS_IDENTITIES) {
    let seed = await readSeed(seedFile(stateDir, id));
    if (seed === null) {
      seed = newSeed();
      await writeAtomic(seedFile(stateDir, id), `${seed}\n`, 0o600);
    }
    seeds[id] = seed;
  }
  return publish(stateDir, scope, seeds, await readPending(stateDir));
}

/**
 * Rotation, first half: new seeds beside the old, a config that accepts both (reload after).
 * Returns the credentials (pending = the next public keys) and the next seeds. A rotation already
 * prepared is reused, not doubled.
 */
export async function prepareRotation(
  stateDir: string,
  scope: Scope,
): Promise<{ credentials: NatsCredentials; nextSeeds: Record<NatsIdentity, string> }> {
  const current = await ensureNatsCredentials(stateDir, scope);
  let next = await readPending(stateDir);
  if (next === null) {
    next = Object.fromEntries(NATS_IDENTITIES.map((id) => [id, newSeed()])) as Record<NatsIdentity, string>;
    for (const id of NATS_IDENTITIES) await writeAtomic(seedFile(stateDir, id, true), `${next[id]}\n`, 0o600);
  }
  return { credentials: await publish(stateDir, scope, current.seeds, next), nextSeeds: next };
}

/** Whether a rotation was prepared and not promoted (a daemon stopped between the two). */
export async function rotationPending(stateDir: string): Promise<boolean> {
  return (await readPending(stateDir)) !== null;
}

/** ployzd's own seed, read from disk at each call: its NATS link re-reads it at every reconnect. */
export function ployzdSeedSource(stateDir: string): () => string {
  return () => readFileSync(seedFile(stateDir, 'ployzd'), 'utf8').trim();
}

/**
 * Rotation, second half: the next seeds become current (edge mounts included), the old keys leave
 * the config (reload after). Returns the credentials now current; a no-op without a prepared one.
 */
export async function promoteRotation(stateDir: string, scope: Scope): Promise<NatsCredentials> {
  const before = await ensureNatsCredentials(stateDir, scope);
  const pending = await readPending(stateDir);
  if (pending === null) return before;
  for (const id of NATS_IDENTITIES) await writeAtomic(seedFile(stateDir, id), `${pending[id]}\n`, 0o600);
  const promoted = await publish(stateDir, scope, pending, null);
  for (const id of NATS_IDENTITIES) await rm(seedFile(stateDir, id, true), { force: true });
  return promoted;
}
