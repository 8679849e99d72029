/**
 * Invite → join against a real nats-server and a real join listener (HTTP on 127.0.0.1): the
 * issuer's checks, single use and the subnet claim by compare-and-set, and that a refused join
 * changes nothing — neither the installation's store nor the joiner's state dir.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type JoinAnswer, JoinRequest } from '@ployz/protocol';
import { openStore, type Store } from '@ployz/store';
import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../../src/daemon/config.ts';
import { Daemon } from '../../src/daemon/daemon.ts';
import { issueInvite } from '../../src/fleet/invite.ts';
import { acceptJoin } from '../../src/fleet/join-accept.ts';
import { JoinListener, requestJoin } from '../../src/fleet/join-listener.ts';
import { type JoinSecrets, openJoinSecrets } from '../../src/fleet/join-secrets.ts';
import { ensureInviteKey, type InviteKey, inviteKeyPath } from '../../src/machine/invite-key.ts';
import { connectDocker, DockerEngine } from '../../src/runtime/docker.ts';
import { machineRecord, wireguardKeys } from '../mesh/keys.ts';

const INSTALLATION = 'prod';
const RANGE = '10.210.0.0/22';
let nats: Awaited<ReturnType<typeof startNats>>;
let store: Store;
let key: InviteKey;
let listener: JoinListener;
let joinAddress: string;
let clock = new Date('2026-12-02T10:00:00.000Z');
const dirs: string[] = [];
const issuerKeys = wireguardKeys();
const SECRETS: JoinSecrets = {
  leaf_secret: 'l'.repeat(43),
  installation_key: 'k'.repeat(43),
  invite_key_pem: '-----BEGIN PRIVATE KEY-----\n…\n-----END PRIVATE KEY-----\n',
};
/** What the issuer says of its promoted store (null: never promoted); the first join sees it. */
const PROMOTED: JoinAnswer['store_members'] = {
  members: ['m1', 'm2', 'm3'].map((id, i) => ({ machine_id: id, overlay_ip: `fd70:6c6f:797a:${i + 1}::1` })),
  run: 'r1',
};
let storeMembers: JoinAnswer['store_members'] | null = PROMOTED;
/** The token of the first join, used from then on. */
let usedToken = '';

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-join-'));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  nats = await startNats();
  store = await openStore({ servers: nats.url, installation: INSTALLATION, authority: 'auth-default' });
  key = (await ensureInviteKey(await tempDir())).key;
  await store.machines.create(
    machineRecord('m1', issuerKeys.publicKey, {
      overlay_ip: 'fd70:6c6f:797a:1::1',
      subnet: '10.210.0.0/24',
      endpoints: ['192.0.2.1:51820'],
    }),
  );
  listener = new JoinListener((request) =>
    acceptJoin(
      {
        store,
        key: key.publicKey,
        installation: INSTALLATION,
        authority: 'auth-default',
        clusterRange: RANGE,
        overlayPrefix: 'fd70:6c6f:797a::/48',
        storeHubs: ['fd70:6c6f:797a:1::1'],
        storeMembers: async () => storeMembers,
        secrets: async () => SECRETS,
        now: () => clock,
      },
      request,
    ),
  );
  joinAddress = await listener.listen('127.0.0.1', 0);
});
afterAll(async () => {
  await listener?.close();
  await store?.close();
  await nats?.stop();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function invite(over: { ttlMs?: number; signWith?: InviteKey; installation?: string } = {}) {
  return issueInvite(store, over.signWith ?? key, {
    installation: over.installation ?? INSTALLATION,
    issuer: 'm1',
    issuer_public_key: issuerKeys.publicKey,
    issuer_endpoints: ['192.0.2.1:51820'],
    join: joinAddress,
    region: 'eu',
    ttlMs: over.ttlMs ?? 3_600_000,
    now: clock,
  });
}

function joinRequest(token: string, id: string, keys = wireguardKeys()): JoinRequest {
  return JoinRequest.parse({
    token,
    machine_id: id,
    public_key: keys.publicKey,
    endpoints: [`192.0.2.${id.slice(1)}:51820`],
  });
}

/** Everything a join may write: machine records, invites, subnet claims, routing events. */
async function storeState() {
  const values = async (bucket: { list(): Promise<{ key: string; revision: number; value: unknown }[]> }) =>
    (await bucket.list()).map((v) => [v.key, v.revision, v.value]);
  return {
    machines: await values(store.machines),
    invites: await values(store.invites),
    subnets: await values(store.subnets),
    routing: await store.routing.lastSeq(),
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (error) {
    return isPloyzError(error) ? error.code : `not a PloyzError: ${String(error)}`;
  }
}

function flipByte(token: string): string {
  const [v, payload = '', signature = ''] = token.split('.');
  const bytes = Buffer.from(payload, 'base64url');
  bytes[5] = (bytes[5] ?? 0) ^ 0x01;
  return `${v}.${bytes.toString('base64url')}.${signature}`;
}

describe('join over the listener (real nats-server)', () => {
  it('a join claims the first free /24, writes the record with its endpoint and event, and uses the invite', async () => {
    const { token, invite: issued } = await invite();
    expect((await store.invites.get(issued.nonce))?.value.state).toBe('issued');
    const before = await store.routing.lastSeq();
    const keys = wireguardKeys();
    const request = joinRequest(token, 'm2', keys);
    const answer: JoinAnswer = await requestJoin(joinAddress, request);
    // The secrets open with the joiner's WireGuard key only, and only for the machine id they name.
    expect(openJoinSecrets(answer.secrets, keys, 'm2')).toEqual(SECRETS);
    expect(() => openJoinSecrets(answer.secrets, wireguardKeys(), 'm2')).toThrow(/cannot open/);
    expect(() => openJoinSecrets(answer.secrets, keys, 'm3')).toThrow(/cannot open/);
    expect(JSON.stringify(answer)).not.toContain(SECRETS.leaf_secret);
    expect(answer.store_hubs).toEqual(['fd70:6c6f:797a:1::1']);
    // The issuer's store was promoted (storeMembers below): the three members, whose leaf port
    // the joiner's ployz-nats uses instead of the hubs'.
    expect(answer.store_members).toEqual(PROMOTED);
    expect(answer).toMatchObject({
      installation: INSTALLATION,
      machine_id: 'm2',
      region: 'eu',
      subnet: '10.210.1.0/24',
    });
    expect(answer.peers.map((p) => p.id)).toEqual(['m1']);
    const stored = await store.machines.get('m2');
    expect(stored?.value).toMatchObject({
      public_key: request.public_key,
      subnet: '10.210.1.0/24',
      endpoints: ['192.0.2.2:51820'],
    });
    expect(stored?.value.overlay_ip).toBe(answer.overlay_ip);
    expect((await store.subnets.get('10.210.1.0/24'))?.value.machine).toBe('m2');
    expect((await store.invites.get(issued.nonce))?.value).toMatchObject({ state: 'used', used_by: 'm2' });
    expect(await store.routing.lastSeq()).toBe((before ?? 0) + 1);

    // The same token again: INVITE_USED, and nothing changes.
    const after = await storeState();
    usedToken = token;
    const again = await codeOf(requestJoin(joinAddress, joinRequest(token, 'm3')));
    expect(again).toBe('INVITE_USED');
    expect(await storeState()).toEqual(after);
  });

  it('forged, foreign, unknown and expired tokens are refused with their codes and change nothing', async () => {
    const { token } = await invite();
    const other = generateKeyPairSync('ed25519');
    const foreign = await invite({ signWith: other });
    // Signed with this installation's key but never recorded (its nonce is unknown).
    const { token: unrecorded, invite: u } = await invite();
    await store.invites.delete(store.invites.key(u.nonce), (await store.invites.get(u.nonce))?.revision ?? 0);
    const short = await invite({ ttlMs: 60_000 });
    const before = await storeState();
    expect(await codeOf(requestJoin(joinAddress, joinRequest(flipByte(token), 'm4')))).toBe('INVITE_INVALID');
    expect(await codeOf(requestJoin(joinAddress, joinRequest(foreign.token, 'm4')))).toBe('INVITE_INVALID');
    expect(await codeOf(requestJoin(joinAddress, joinRequest(unrecorded, 'm4')))).toBe('INVITE_INVALID');
    expect(await codeOf(requestJoin(joinAddress, joinRequest('not-a-token', 'm4')))).toBe('INVITE_INVALID');
    clock = new Date(clock.getTime() + 61_000);
    try {
      expect(await codeOf(requestJoin(joinAddress, joinRequest(short.token, 'm4')))).toBe('INVITE_EXPIRED');
    } finally {
      clock = new Date(clock.getTime() - 61_000);
    }
    expect(await storeState()).toEqual(before);
    // The untouched good token still joins; never promoted, the answer names no members.
    storeMembers = null;
    const m4 = await requestJoin(joinAddress, joinRequest(token, 'm4'));
    expect(m4.machine_id).toBe('m4');
    expect(m4.store_members).toBeUndefined();
  });

  it('joins at the same moment get different /24s (compare-and-set claims)', async () => {
    // m1, m2 and m4 hold 10.210.0-2.0/24: the fourth /24 of the /22 is the only free one left
    // after the first of these joins, so two of them always contend for one subnet.
    const tokens = await Promise.all([invite(), invite()]);
    const results = await Promise.allSettled(
      tokens.map(({ token }, i) => requestJoin(joinAddress, joinRequest(token, `m${5 + i}`))),
    );
    const joined = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(joined.map((a) => a.subnet)).toEqual(['10.210.3.0/24']);
    expect(refused.map((e) => (isPloyzError(e) ? e.code : String(e)))).toEqual(['CONFIG_INVALID']);
    // The loser's invite was given back: still issued, good for a later try.
    const states = await Promise.all(tokens.map(({ invite: i }) => store.invites.get(i.nonce)));
    expect(states.map((s) => s?.value.state).sort()).toEqual(['issued', 'used']);
    const claims = (await store.subnets.list()).map((c) => c.value.subnet).sort();
    expect(claims).toEqual(['10.210.1.0/24', '10.210.2.0/24', '10.210.3.0/24']);
  });

  it('many joins at once on a wide range: every subnet distinct, one claim each', async () => {
    const wide = new JoinListener((request) =>
      acceptJoin(
        {
          store,
          key: key.publicKey,
          installation: INSTALLATION,
          authority: 'auth-default',
          clusterRange: '10.211.0.0/16',
          overlayPrefix: 'fd70:6c6f:797a::/48',
          storeHubs: ['fd70:6c6f:797a:1::1'],
          secrets: async () => SECRETS,
          now: () => clock,
        },
        request,
      ),
    );
    const address = await wide.listen('127.0.0.1', 0);
    try {
      const tokens = await Promise.all(Array.from({ length: 6 }, () => invite()));
      const answers = await Promise.all(
        tokens.map(({ token }, i) => requestJoin(address, joinRequest(token, `m${20 + i}`))),
      );
      const subnets = answers.map((a) => a.subnet);
      expect(new Set(subnets).size).toBe(6);
      for (const a of answers) expect((await store.subnets.get(a.subnet))?.value.machine).toBe(a.machine_id);
    } finally {
      await wide.close();
    }
  });
});

describe('the join listener facing a hostile client', () => {
  it('answers 400/404 with a code to junk, oversize and wrong routes, and keeps serving', async () => {
    const post = (path: string, body: string) =>
      fetch(`http://${joinAddress}${path}`, { method: 'POST', body }).then(async (r) => ({
        status: r.status,
        code: ((await r.json()) as { error?: { code?: string } }).error?.code,
      }));
    expect(await post('/v1/join', '{not json')).toEqual({ status: 400, code: 'API_BAD_REQUEST' });
    expect(await post('/v1/join', JSON.stringify({ token: 'x' }))).toEqual({
      status: 400,
      code: 'API_BAD_REQUEST',
    });
    expect(await post('/v1/join', 'x'.repeat(20_000))).toEqual({ status: 400, code: 'API_BAD_REQUEST' });
    expect(await post('/v1/other', '{}')).toEqual({ status: 404, code: 'NOT_FOUND' });
    expect(await codeOf(requestJoin(joinAddress, joinRequest('ployz1.x.y', 'm9')))).toBe('INVITE_INVALID');
  });
});

describe('the joiner (a real ployzd, not initialised)', () => {
  async function listing(dir: string): Promise<string[]> {
    const out: string[] = [];
    const walk = async (d: string) => {
      for (const entry of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        const path = join(d, entry.name);
        out.push(`${path.slice(dir.length)} ${(await stat(path)).mtimeMs}`);
        if (entry.isDirectory()) await walk(path);
      }
    };
    await walk(dir);
    return out.sort();
  }

  it('a refused token leaves its state dir and the store as they were', async () => {
    const dir = await tempDir();
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock'), '--lan-address', '127.0.0.1'],
      {},
    );
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), pino({ level: 'silent' }));
    const expiring = await invite({ ttlMs: 1000 });
    const good = await invite();
    const beforeDir = await listing(dir);
    const beforeStore = await storeState();
    const cases = [
      [flipByte(good.token), 'INVITE_INVALID'],
      [usedToken, 'INVITE_USED'],
      ['ployz1.garbage', 'INVITE_INVALID'],
    ] as const;
    for (const [token, expected] of cases) {
      expect(await codeOf(daemon.join({ token, machine_id: 'j1' })), expected).toBe(expected);
    }
    clock = new Date(clock.getTime() + 2000);
    try {
      expect(await codeOf(daemon.join({ token: expiring.token, machine_id: 'j1' }))).toBe('INVITE_EXPIRED');
    } finally {
      clock = new Date(clock.getTime() - 2000);
    }
    expect(await listing(dir)).toEqual(beforeDir);
    expect(await storeState()).toEqual(beforeStore);
    await expect(stat(inviteKeyPath(config.stateDir))).rejects.toThrow(/ENOENT/);
  });

  it('machine init and join with a malformed --endpoint are INVALID_ARGUMENT before anything is written', async () => {
    const dir = await tempDir();
    const config = parseDaemonConfig(
      ['--state-dir', join(dir, 'state'), '--socket-path', join(dir, 'd.sock')],
      {},
    );
    const daemon = new Daemon(config, new DockerEngine(connectDocker()), pino({ level: 'silent' }));
    const good = await invite();
    const before = await storeState();
    expect(await codeOf(daemon.init({ endpoints: ['192.0.2.1'] }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(daemon.join({ token: good.token, endpoints: ['192.0.2.1:99999'] }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await listing(dir)).toEqual([]);
    expect(await storeState()).toEqual(before);
  });
});

describe('the installation invite key', () => {
  it('the invite key is 0600 and kept when present', async () => {
    const dir = await tempDir();
    const first = await ensureInviteKey(dir);
    const second = await ensureInviteKey(dir);
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.key.publicKey.export({ format: 'der', type: 'spki' })).toEqual(
      first.key.publicKey.export({ format: 'der', type: 'spki' }),
    );
    expect((await stat(inviteKeyPath(dir))).mode & 0o777).toBe(0o600);
  });
});
