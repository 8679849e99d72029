/**
 * The join exchange between two ployzd (DESIGN.md §7): the joiner POSTs `JoinRequest` to the
 * issuer's join listener (`JOIN_PATH` on `DEFAULT_JOIN_PORT`, the address the invite names); the
 * issuer answers `JoinAnswer` (200) or `{ error }` with the code (INVITE_INVALID, INVITE_EXPIRED,
 * INVITE_USED…). Plain HTTP on the LAN: the token is the only secret and is single-use.
 */
import { MachineId, MachineRecord } from '@ployz/types';
import { z } from 'zod';
import { WireErrorBody } from './error-body.ts';

export const DEFAULT_JOIN_PORT = 51821;
export const JOIN_PATH = '/v1/join';
/** Largest join request body the listener reads. */
export const JOIN_MAX_BODY = 16 * 1024;

export const JoinRequest = z.strictObject({
  token: z.string().min(1).max(4096),
  machine_id: MachineId,
  public_key: MachineRecord.shape.public_key,
  endpoints: z.array(z.string().max(300)).max(8),
});
export type JoinRequest = z.infer<typeof JoinRequest>;

/** Installation secrets sealed to the joiner's WireGuard key (ployzd fleet/join-secrets.ts). */
export const SealedJoinSecrets = z.strictObject({
  /** Ephemeral X25519 public key, base64url. */
  epk: z.string().max(64),
  iv: z.string().max(32),
  box: z.string().max(16 * 1024),
});
export type SealedJoinSecrets = z.infer<typeof SealedJoinSecrets>;

export const JoinAnswer = z.strictObject({
  installation: z.string(),
  authority: z.string(),
  machine_id: MachineId,
  region: z.string(),
  subnet: z.string(),
  overlay_ip: z.string(),
  /** The joiner's record as written, and every other machine's (the issuer's included). */
  record: MachineRecord,
  peers: z.array(MachineRecord),
  /** Overlay addresses of the machines holding JetStream: the joiner's ployz-nats leaf remotes. */
  store_hubs: z.array(z.string()).min(1),
  /**
   * Set once the store was promoted (issue 19, ADR 0020): the three store members, whose leaf port
   * the joiner's ployz-nats connects to instead of `store_hubs`.
   */
  store_members: z
    .strictObject({
      members: z
        .array(z.strictObject({ machine_id: z.string().min(1), overlay_ip: z.string().min(1) }))
        .length(3),
      run: z.string().min(1),
    })
    .optional(),
  secrets: SealedJoinSecrets,
});
export type JoinAnswer = z.infer<typeof JoinAnswer>;

export const JoinReply = z.union([
  z.strictObject({ result: JoinAnswer }),
  z.strictObject({ error: WireErrorBody }),
]);
