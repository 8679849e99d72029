/**
 * Rotating this machine's NATS identities (`ployzctl machine credentials rotate`,
 * docs/adr/0011-trust-model.md) without a moment where a running component holds no valid key,
 * and without recreating any container:
 *
 * 1. prepare: new seeds beside the old, the server config accepts both → reload ployz-nats, and
 *    wait until the server takes ployzd's new key (else stop here: the old keys still work);
 * 2. promote: the new seeds become current (ployzd's file, the edge apps' mounted seed files), the
 *    old keys leave the config → reload, and wait until the server refuses ployzd's old key;
 *    nats-server closes the connections still on old keys, and each client reconnects with the
 *    seed it reads then;
 * 3. wait until the server sees each component (ployzd's own link too) on its new key only
 *    (`connz?auth=1` on the monitoring port), and report it.
 *
 * A daemon stopped between 1 and 2 promotes at its next start (`finishInterruptedRotation`).
 */
import { connect, nkeyAuthenticator } from '@nats-io/transport-node';
import type { Scope } from '@ployz/store';
import { PloyzError } from '@ployz/types';
import {
  ensureNatsCredentials,
  NATS_IDENTITIES,
  type NatsIdentity,
  prepareRotation,
  promoteRotation,
  rotationPending,
} from './nats-credentials.ts';

export interface RotationTarget {
  stateDir: string;
  scope: Scope;
  /** Where ployzd reaches its ployz-nats. */
  natsUrl: string;
  /** ployz-nats's monitoring endpoint (`http://<.2>:8222`), to see the edge apps reconnect; null skips. */
  monitorUrl: string | null;
  /** Makes ployz-nats re-read its config (SIGHUP to the container). */
  reload(): Promise<void>;
  /** How long each wait may take. Default 15 s. */
  timeoutMs?: number;
}

export interface RotationResult {
  public_keys: Record<NatsIdentity, string>;
  previous_public_keys: Record<NatsIdentity, string>;
  /** Per component: seen by the server on its new key (and on no other) before the timeout. */
  reconnected: Record<NatsIdentity, boolean>;
}

/** Whether the server accepts a connection with this seed now. */
async function accepts(natsUrl: string, seed: string): Promise<boolean> {
  try {
    const nc = await connect({
      servers: natsUrl,
      authenticator: nkeyAuthenticator(new TextEncoder().encode(seed)),
      timeout: 2000,
      reconnect: false,
      name: 'ployzd-rotation-check',
    });
    await nc.close();
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The public keys the server sees on connections of this client name (`connz?auth=1`). */
async function keysOf(monitorUrl: string, name: string): Promise<string[]> {
  try {
    const res = await fetch(`${monitorUrl}/connz?auth=1&limit=1024`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json()) as { connections?: { name?: string; authorized_user?: string }[] };
    return (body.connections ?? []).filter((c) => c.name === name).map((c) => c.authorized_user ?? '');
  } catch {
    return [];
  }
}

/** The connection name each component gives nats-server (NatsLink, the edge apps' feeds). */
const CLIENT_NAMES: Record<NatsIdentity, string> = {
  ployzd: 'ployzd',
  gateway: 'ployz-gateway',
  dns: 'ployz-dns',
};

function reloadFailed(message: string, cause?: unknown): PloyzError {
  return new PloyzError('NATS_RELOAD_FAILED', message, cause === undefined ? {} : { cause });
}

export async function rotateNatsCredentials(target: RotationTarget): Promise<RotationResult> {
  const timeoutMs = target.timeoutMs ?? 15_000;
  const before = await ensureNatsCredentials(target.stateDir, target.scope);
  const { nextSeeds } = await prepareRotation(target.stateDir, target.scope);
  await target.reload().catch((e: unknown) => {
    throw reloadFailed(`cannot reload ployz-nats: ${(e as Error).message}; the old keys still work`, e);
  });
  if (!(await until(() => accepts(target.natsUrl, nextSeeds.ployzd), timeoutMs))) {
    throw reloadFailed(
      `ployz-nats did not take the new keys within ${timeoutMs / 1000} s; the old keys still work and ` +
        'no component changed. Check `docker logs` of ployz-nats, then run the command again.',
    );
  }
  const promoted = await promoteRotation(target.stateDir, target.scope);
  await target.reload().catch((e: unknown) => {
    throw reloadFailed(
      `cannot reload ployz-nats after promoting the new keys: ${(e as Error).message}; both keys still ` +
        'work; run the command again to finish',
      e,
    );
  });
  if (!(await until(async () => !(await accepts(target.natsUrl, before.seeds.ployzd)), timeoutMs))) {
    throw reloadFailed(
      `ployz-nats still accepts the old keys ${timeoutMs / 1000} s after the reload; run the command again`,
    );
  }
  const reconnected = { ployzd: false, gateway: false, dns: false };
  if (target.monitorUrl !== null) {
    const monitor = target.monitorUrl;
    await Promise.all(
      NATS_IDENTITIES.map(async (id) => {
        reconnected[id] = await until(async () => {
          const keys = await keysOf(monitor, CLIENT_NAMES[id]);
          return keys.length > 0 && keys.every((k) => k === promoted.publicKeys[id]);
        }, timeoutMs);
      }),
    );
  }
  return {
    public_keys: promoted.publicKeys,
    previous_public_keys: before.publicKeys,
    reconnected,
  };
}

/**
 * At daemon start: a rotation prepared but not promoted (ployzd stopped in between) is promoted,
 * and ployz-nats reloads whatever config is on disk (it may have been written after its last
 * load). Returns whether a rotation was finished.
 */
export async function finishInterruptedRotation(
  target: Pick<RotationTarget, 'stateDir' | 'scope' | 'reload'>,
) {
  const pending = await rotationPending(target.stateDir);
  if (pending) await promoteRotation(target.stateDir, target.scope);
  await target.reload();
  return pending;
}
