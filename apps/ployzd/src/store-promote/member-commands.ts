/**
 * The store cluster member's machine commands (issue 19, ADR 0020), answered by every ployzd and
 * called by the promotion's coordinator over the mesh (or on its own machine):
 *
 * - `store_member_start`: writes this machine's member record (member-state.ts) and runs one
 *   data-plane pass, so the supervisor creates — or adopts — ployz-nats-store in the networking
 *   netns. From then on the supervisor owns it like nats: repaired when stopped or removed, and
 *   recreated when ployz-networking is (its netns went with the old one). Idempotent.
 * - `store_member_remove`: forgets the record, removes the container and its data directory (the
 *   discarded copy of a promotion that did not reach its commit point). Idempotent.
 * - `store_switch`: after the commit point, writes the switch-over record (member-state.ts) so the
 *   next pass recreates ployz-nats as a leaf of the three members. The answer goes out first and
 *   the pass runs a moment later: the recreate drops this machine's NATS connection, the one the
 *   answer travels on. Idempotent.
 *
 * The registry is @ployz/protocol's `storeMemberCommands`.
 */
import { LABELS } from '@ployz/identity';
import type { StoreMemberStartRequest, StoreMemberView, StoreSwitchRequest } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { STORE_MEMBER_COMPONENT } from '../dataplane/component-spec.ts';
import type { DataPlane } from '../dataplane/supervisor.ts';
import type { DockerEngine } from '../runtime/docker.ts';
import {
  readStoreLeaf,
  readStoreMember,
  removeStoreMember,
  writeStoreLeaf,
  writeStoreMember,
} from './member-state.ts';

export interface MemberHost {
  stateDir: string;
  containerPrefix: string;
  machineId: string;
  installation: string;
  docker: DockerEngine;
  dataPlane: DataPlane;
}

export async function startStoreMember(
  host: MemberHost,
  input: StoreMemberStartRequest,
): Promise<StoreMemberView> {
  const ids = new Set(input.members.map((m) => m.machine_id));
  const ips = new Set(input.members.map((m) => m.overlay_ip));
  if (ids.size !== 3 || ips.size !== 3 || !ids.has(host.machineId)) {
    throw new PloyzError(
      'STORE_PROMOTE_MACHINES_INVALID',
      `a store member on ${host.machineId} needs three distinct members including ${host.machineId}; got ${[...ids].join(', ')}`,
      { details: { machine: host.machineId, members: [...ids] } },
    );
  }
  const before = await readStoreMember(host.stateDir);
  await writeStoreMember(host.stateDir, {
    members: input.members,
    run: input.run,
    started_at: before?.started_at ?? new Date().toISOString(),
  });
  const summary = await host.dataPlane.reconcile();
  const status = (await host.dataPlane.status()).find((c) => c.component === STORE_MEMBER_COMPONENT);
  if (summary.error !== null || status === undefined || !status.running) {
    throw new PloyzError(
      'STORE_PROMOTE_UNHEALTHY',
      `the store member on ${host.machineId} did not start: ${summary.error?.message ?? status?.detail ?? 'not reconciled'}; see ployzctl status on ${host.machineId}`,
      { details: { machine: host.machineId, state: status?.state ?? null, reason: status?.reason ?? null } },
    );
  }
  return {
    machine: host.machineId,
    container_name: status.container_name,
    container_id: status.container_id,
    state: status.state,
    running: status.running,
  };
}

export async function removeStoreMemberContainer(
  host: MemberHost,
): Promise<{ machine: string; removed: boolean }> {
  // The record first: a pass running meanwhile no longer wants the member.
  const had = (await readStoreMember(host.stateDir)) !== null;
  await removeStoreMember(host.stateDir);
  const name = `${host.containerPrefix}${STORE_MEMBER_COMPONENT}`;
  const found = await host.docker.inspectByName(name);
  // Only ours: a container of that name from another installation is not touched.
  const live = found?.labels[LABELS.installation] === host.installation ? found : null;
  if (live !== null) await host.docker.remove(live.id);
  // Its data directory again: the container may have written until it stopped.
  await removeStoreMember(host.stateDir);
  await host.dataPlane.reconcile();
  return { machine: host.machineId, removed: had || live !== null };
}

/** How long `store_switch` waits after its answer before ployz-nats is recreated. */
export const SWITCH_DEFER_MS = 300;

/**
 * Points this machine's ployz-nats at the store members. `defer`: the pass runs after this
 * returns (a remote caller's answer must leave first); otherwise it is awaited. `switched` is
 * false when the machine had already switched to these members.
 */
export async function switchToStoreMembers(
  host: MemberHost,
  input: StoreSwitchRequest,
  options: { defer: boolean; log: (message: string, error?: unknown) => void },
): Promise<{ machine: string; switched: boolean }> {
  const ips = new Set(input.members.map((m) => m.overlay_ip));
  if (ips.size !== 3 || new Set(input.members.map((m) => m.machine_id)).size !== 3) {
    throw new PloyzError(
      'STORE_PROMOTE_MACHINES_INVALID',
      `a switch-over needs three distinct store members; got ${input.members.map((m) => m.machine_id).join(', ')}`,
      { details: { machine: host.machineId } },
    );
  }
  const before = await readStoreLeaf(host.stateDir);
  const same =
    before !== null &&
    before.members.length === ips.size &&
    before.members.every((m) => ips.has(m.overlay_ip));
  if (!same) {
    await writeStoreLeaf(host.stateDir, {
      members: input.members,
      run: input.run,
      switched_at: new Date().toISOString(),
    });
  }
  const pass = async () => {
    const summary = await host.dataPlane.reconcile();
    if (summary.error !== null) options.log(`store switch-over pass failed: ${summary.error.message}`);
  };
  if (options.defer) {
    setTimeout(() => {
      pass().catch((err: unknown) => options.log('store switch-over pass failed', err));
    }, SWITCH_DEFER_MS).unref();
  } else {
    await pass();
  }
  return { machine: host.machineId, switched: !same };
}
