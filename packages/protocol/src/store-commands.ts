/**
 * `ployzctl machine storage promote --replicas 3 <m1> <m2> <m3>` (issue 19): the promotion plan
 * ployzd computes (apps/ployzd/src/store-promote/plan.ts) and the promotion record it keeps
 * (@ployz/store promotion.ts), as the local API carries them.
 */
import { z } from 'zod';
import { defineCommands } from './rpc.ts';

export const StoragePromoteRequest = z.strictObject({
  replicas: z.number().int(),
  machines: z.array(z.string().min(1).max(64)).max(16),
  /** Refuse members whose round trip from this machine is over this (default 50 ms). */
  rtt_bound_ms: z.number().positive().max(10_000).optional(),
});
export type StoragePromoteRequest = z.infer<typeof StoragePromoteRequest>;

export const StoragePromotionView = z.looseObject({
  run: z.string(),
  coordinator: z.string(),
  phase: z.string(),
  from: z.number(),
  to: z.number(),
  members: z.array(z.string()),
  started_at: z.string(),
  updated_at: z.string(),
  expires_at: z.string(),
  error: z.object({ code: z.string(), message: z.string() }).nullable(),
});
export type StoragePromotionView = z.infer<typeof StoragePromotionView>;

export const StoragePromotePlanView = z.looseObject({
  from: z.number(),
  to: z.number(),
  current_storage: z.string(),
  members: z.array(
    z.looseObject({
      machine: z.string(),
      overlay_ip: z.string(),
      region: z.string(),
      region_role: z.string(),
      reachable: z.boolean(),
      healthy: z.boolean(),
      rtt_ms: z.number().nullable(),
      holds_store_now: z.boolean(),
    }),
  ),
  regions: z.array(z.string()),
  rtt_bound_ms: z.number(),
  assets: z.array(
    z.looseObject({
      asset: z.string(),
      kind: z.enum(['kv', 'stream']),
      messages: z.number().int(),
      bytes: z.number().int(),
      lastId: z.string().nullable(),
    }),
  ),
  messages: z.number().int(),
  bytes: z.number().int(),
  checks: z.array(
    z.looseObject({
      check: z.string(),
      machine: z.string().nullable(),
      ok: z.boolean(),
      blocking: z.boolean(),
      detail: z.string(),
    }),
  ),
  refusal: z.object({ code: z.string(), message: z.string() }).nullable(),
  /** The last promotion's record on this store (null: never promoted). */
  promotion: StoragePromotionView.nullable(),
});
export type StoragePromotePlanView = z.infer<typeof StoragePromotePlanView>;

/** The store part of `status` (issue 19 item 5): replicas, leader, each asset current or lagging, the promotion. */
export const StoreStatusView = z.looseObject({
  replicas: z.number().int(),
  leader: z.string().nullable(),
  assets: z.array(
    z.looseObject({
      asset: z.string(),
      replicas: z.number().int(),
      leader: z.string().nullable(),
      current: z.array(z.string()),
      lagging: z.array(z.looseObject({ server: z.string(), lag: z.number(), active_ms: z.number() })),
    }),
  ),
  promotion: StoragePromotionView.nullable(),
  /**
   * The store members as this machine reaches them over the mesh (empty on a standalone store):
   * filled even when the store cannot be read, so two lost members are named. Absent from an
   * older ployzd: empty.
   */
  peers: z
    .array(
      z.looseObject({
        machine: z.string(),
        server: z.string(),
        address: z.string(),
        reachable: z.boolean(),
        rtt_ms: z.number().nullable(),
        problem: z.string().nullable(),
      }),
    )
    .default([]),
  /** Why it could not be read (the store away): the rest is then empty, not zero. */
  error: z.string().nullable(),
});
export type StoreStatusView = z.infer<typeof StoreStatusView>;

const StoreMember = z.strictObject({ machine_id: z.string().min(1), overlay_ip: z.string().min(1) });

export const StoreMemberView = z.strictObject({
  machine: z.string(),
  container_name: z.string(),
  container_id: z.string().nullable(),
  state: z.string(),
  running: z.boolean(),
});
export type StoreMemberView = z.infer<typeof StoreMemberView>;

/**
 * A storage machine's JetStream cluster member ployz-nats-store (issue 19, ADR 0020), started and
 * removed by the promotion's coordinator on each of the three machines
 * (apps/ployzd/src/store-promote/member-commands.ts).
 */
export const storeMemberCommands = defineCommands({
  store_member_start: {
    request: z.strictObject({ members: z.array(StoreMember).length(3), run: z.string().nullable() }),
    response: StoreMemberView,
    description: 'start (or adopt) this machine’s store cluster member ployz-nats-store',
  },
  store_member_remove: {
    request: z.null(),
    response: z.strictObject({ machine: z.string(), removed: z.boolean() }),
    description: 'remove this machine’s store cluster member and its data',
  },
  store_switch: {
    request: z.strictObject({ members: z.array(StoreMember).length(3), run: z.string().min(1) }),
    response: z.strictObject({ machine: z.string(), switched: z.boolean() }),
    description:
      'make this machine’s ployz-nats a leaf of the three store members (after a promotion’s commit point); answered before ployz-nats is recreated',
  },
});
export type StoreMemberCommands = typeof storeMemberCommands;
export type StoreMemberStartRequest = z.infer<(typeof storeMemberCommands)['store_member_start']['request']>;
export type StoreSwitchRequest = z.infer<(typeof storeMemberCommands)['store_switch']['request']>;

/** One line of a running promotion (`machine storage promote --yes`). */
export const StoragePromoteProgress = z.looseObject({
  at: z.string(),
  /** The apply step (apps/ployzd/src/store-promote/apply.ts) or the store's phase. */
  step: z.string(),
  machine: z.string().nullable(),
  detail: z.string(),
});
export type StoragePromoteProgress = z.infer<typeof StoragePromoteProgress>;

export const StoragePromoteResult = z.looseObject({
  run: z.string(),
  members: z.array(z.string()),
  /** Per asset, what the final verification counted on the new store. */
  verified: z.array(
    z.looseObject({
      asset: z.string(),
      messages: z.number().int(),
      lastSeq: z.number().int(),
      lastId: z.string().nullable(),
    }),
  ),
  /** Machines whose ployz-nats answers as a leaf of the members. */
  switched: z.array(z.string()),
  /** Active machines not switched yet (unreachable now): each switches by itself once it reads the record. */
  pending: z.array(z.object({ machine: z.string(), reason: z.string() })),
  duration_ms: z.number(),
});
export type StoragePromoteResult = z.infer<typeof StoragePromoteResult>;
