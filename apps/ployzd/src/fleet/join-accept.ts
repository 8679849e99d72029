/**
 * The issuer's side of a join (DESIGN.md §7), in the order that keeps a refused join a no-op:
 * verify the token (signature, installation, expiry: pure), read its invite record (unknown →
 * INVITE_INVALID, used → INVITE_USED), check the joiner's id and key are free — all reads —
 * then consume the invite by compare-and-set (a second use loses: INVITE_USED), claim a /24 by
 * compare-and-set, and create the joiner's machine record with its routing event. A failure after
 * the invite was consumed (no free /24, the id raced) releases the claim and gives the invite back.
 */
import type { KeyObject } from 'node:crypto';
import type { JoinAnswer, JoinRequest } from '@ployz/protocol';
import type { Store } from '@ployz/store';
import { isPloyzError, MachineRecord, PloyzError } from '@ployz/types';
import { overlayAddress } from '../machine/address.ts';
import { parseEndpoints } from './endpoint.ts';
import { verifyInvite } from './invite-token.ts';
import { type JoinSecrets, sealJoinSecrets } from './join-secrets.ts';
import { claimSubnet } from './subnet-claim.ts';

export interface AcceptDeps {
  store: Store;
  /** The installation's invite key (public half). */
  key: KeyObject;
  installation: string;
  authority: string;
  clusterRange: string;
  overlayPrefix: string;
  /** Overlay addresses of the machines holding JetStream (the joiner's leaf remotes). */
  storeHubs: string[];
  /** The store members once the store was promoted (this machine's switch-over record), else null. */
  storeMembers?: () => Promise<JoinAnswer['store_members'] | null>;
  /** What the joiner needs to be a full member; sealed to its WireGuard key in the answer. */
  secrets(): Promise<JoinSecrets>;
  now(): Date;
}

function used(usedBy: string | null): PloyzError {
  return new PloyzError(
    'INVITE_USED',
    `this invite already joined ${usedBy ?? 'another machine'}; nothing was changed. Ask a member for a new one: ployzctl machine invite`,
    { details: { used_by: usedBy } },
  );
}

export async function acceptJoin(deps: AcceptDeps, request: JoinRequest): Promise<JoinAnswer> {
  const now = deps.now();
  const invite = verifyInvite(request.token, { key: deps.key, installation: deps.installation, now });
  const { store } = deps;
  const issued = await store.invites.get(invite.nonce);
  if (issued === null) {
    throw new PloyzError(
      'INVITE_INVALID',
      'the invite is not one this installation issued (no record of its nonce); nothing was changed. Ask a member for a new one: ployzctl machine invite',
      { details: { reason: 'unknown nonce' } },
    );
  }
  if (issued.value.state === 'used') throw used(issued.value.used_by);
  const endpoints = parseEndpoints(request.endpoints);
  const machines = (await store.machines.list()).map((m) => m.value);
  if (machines.some((m) => m.id === request.machine_id)) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      `machine id ${request.machine_id} is taken in installation ${deps.installation}; join again with another --id (the invite is still good)`,
      { details: { machine_id: request.machine_id } },
    );
  }
  if (machines.some((m) => m.public_key === request.public_key)) {
    throw new PloyzError(
      'INVALID_ARGUMENT',
      'that WireGuard public key belongs to a machine of this installation already; nothing was changed',
    );
  }
  // Read before anything is written: a member that cannot hand over the secrets changes nothing.
  const secrets = await deps.secrets();
  const storeMembers = (await deps.storeMembers?.()) ?? null;
  let consumed: { revision: number };
  try {
    consumed = await store.invites.update(
      { ...issued.value, state: 'used', used_by: request.machine_id, used_at: now.toISOString() },
      issued.revision,
    );
  } catch (error) {
    if (isPloyzError(error, 'STORE_CONFLICT')) {
      throw used((await store.invites.get(invite.nonce))?.value.used_by ?? null);
    }
    throw error;
  }
  // From here a failure gives the invite back (by compare-and-set on the revision just written).
  const giveBack = () => store.invites.update(issued.value, consumed.revision).catch(() => {});
  let claim: Awaited<ReturnType<typeof claimSubnet>>;
  try {
    claim = await claimSubnet(store, request.machine_id, deps.clusterRange, now);
  } catch (error) {
    await giveBack();
    throw error;
  }
  const record = MachineRecord.parse({
    id: request.machine_id,
    public_key: request.public_key,
    overlay_ip: overlayAddress(request.public_key, deps.overlayPrefix),
    subnet: claim.subnet,
    endpoints,
    region: invite.region ?? 'default',
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: now.toISOString(),
    updated_at: now.toISOString(),
  });
  try {
    await store.machines.create(record);
  } catch (error) {
    await claim.release().catch(() => {});
    await giveBack();
    throw error;
  }
  await store.routing.append({
    type: 'machine_upserted',
    machine: record,
    deploy_id: null,
    at: record.updated_at,
  });
  return {
    installation: deps.installation,
    authority: deps.authority,
    machine_id: record.id,
    region: record.region,
    subnet: record.subnet,
    overlay_ip: record.overlay_ip,
    record,
    peers: machines,
    store_hubs: deps.storeHubs,
    ...(storeMembers === null ? {} : { store_members: storeMembers }),
    secrets: sealJoinSecrets(secrets, request.public_key, record.id),
  };
}
