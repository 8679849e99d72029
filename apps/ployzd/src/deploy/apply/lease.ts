/**
 * Step 2: the namespace deploy lease. Held → DEPLOY_LOCK_HELD at once (the store's error, with
 * holder and expiry). Renewed every third of its TTL; a failed renewal aborts the run
 * (LEASE_LOST), so no later step writes under a lease this daemon no longer holds.
 */
import { keys } from '@ployz/store';
import { PloyzError } from '@ployz/types';
import type { EngineOptions } from '../context.ts';
import type { HeldLease } from '../ports.ts';
import type { DeployRun } from './run.ts';

export const DEFAULT_LEASE_TTL_MS = 15_000;

/** The namespace deploy lease's key: the store's key scheme (`cp.lock.deploy.<ns>`, escaped). */
export const deployLeaseKey = keys.deployLock;

const OWNER_PREFIX = 'ployzd:';

/** Who holds a lease taken here: `ployzd:<machine>:<process nonce>`. */
export function leaseOwner(engine: Pick<EngineOptions, 'machineId' | 'processNonce'>): string {
  return `${OWNER_PREFIX}${engine.machineId}:${engine.processNonce}`;
}

/** The parts of a `leaseOwner` string; null for an owner some other program wrote. */
export function parseLeaseOwner(owner: string): { machineId: string; processNonce: string } | null {
  if (!owner.startsWith(OWNER_PREFIX)) return null;
  const rest = owner.slice(OWNER_PREFIX.length);
  const cut = rest.lastIndexOf(':');
  if (cut <= 0 || cut === rest.length - 1) return null;
  return { machineId: rest.slice(0, cut), processNonce: rest.slice(cut + 1) };
}

/** A lease taken by an earlier incarnation of this daemon (same machine, another process). */
export function heldByEarlierSelf(
  engine: Pick<EngineOptions, 'machineId' | 'processNonce'>,
  owner: string,
): boolean {
  const parsed = parseLeaseOwner(owner);
  return (
    parsed !== null && parsed.machineId === engine.machineId && parsed.processNonce !== engine.processNonce
  );
}

export interface RenewedLease {
  readonly held: HeldLease;
  /** Stops renewing and releases (best effort: an expired lease lapses on its own). */
  release(): Promise<void>;
}

export async function acquireDeployLease(run: DeployRun): Promise<RenewedLease> {
  const { engine } = run;
  const ttlMs = engine.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const held = await engine.store.acquireLease(
    deployLeaseKey(run.manifest.namespace),
    leaseOwner(engine),
    ttlMs,
    `deploy ${run.deployId}`,
  );
  const timer = setInterval(
    () => {
      held.renew().catch((err: unknown) => {
        run.leaseError = new PloyzError(
          'LEASE_LOST',
          'the namespace deploy lease could not be renewed; the deploy stops',
          { cause: err },
        );
        run.abort.abort(run.leaseError);
      });
    },
    Math.max(500, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return {
    held,
    async release() {
      clearInterval(timer);
      await held.release().catch(() => {});
    },
  };
}
