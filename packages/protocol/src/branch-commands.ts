/**
 * The local API bodies of `ployzctl branch preview|apply|promote` (docs/operations.md, Branches).
 * A branch is a deploy of a new namespace from another one's committed state; a promote is a
 * deploy of a branch's services back into its source. Both answer with the deploy plan (its
 * `lineage` says where each service and volume comes from) and, for the preview, how the routes
 * change (hostnames are never copied).
 */
import { ServiceSpec } from '@ployz/types';
import { z } from 'zod';
import { DeployPlan } from './deploy-events.ts';

/** A namespace as a manifest names it (a DNS label): it ends up in container, dataset and path names. */
const Namespace = ServiceSpec.shape.namespace;

export const BranchRequest = z.object({
  source: Namespace,
  destination: Namespace,
  /**
   * `--volume name=mode` by name; a source volume not named is cloned, one only the manifest
   * declares starts empty. The daemon checks names and modes (BRANCH_VOLUME_UNKNOWN).
   */
  volumes: z.record(z.string(), z.string()).default({}),
  /** Put in front of every source hostname (`pr-7` → `pr-7.shop.example.com`); null: no hostnames copied. */
  host_suffix: z.string().nullable().default(null),
  /** A manifest of the branch namespace overriding services and volumes; null: the source's as they are. */
  manifest: z.string().min(1).nullable().default(null),
  filename: z.string().nullable().default(null),
  format: z.enum(['toml', 'json']).nullable().default(null),
  actor: z.string().nullable().default(null),
  start_concurrency: z.number().int().min(1).max(256).nullable().default(null),
});
export type BranchRequest = z.infer<typeof BranchRequest>;

export const PromoteRequest = z.object({
  /** The branch whose services are deployed. */
  branch: Namespace,
  /** The namespace it was branched from, which receives them. */
  source: Namespace,
  /** Replace the source's volumes with the branch's data (its state before is kept as a snapshot). */
  with_data: z.boolean().default(false),
  actor: z.string().nullable().default(null),
});
export type PromoteRequest = z.infer<typeof PromoteRequest>;

/** What happens to one route of a service: rewritten (`to`), or dropped (`to` null), with why. */
export const RouteChange = z.object({
  service: z.string(),
  kind: z.enum(['http', 'tcp']),
  /** `host/path` of an http route, `:port` of a tcp route, in the namespace the spec comes from. */
  from: z.string(),
  to: z.string().nullable(),
  detail: z.string(),
});
export type RouteChange = z.infer<typeof RouteChange>;

export const BranchPlanView = z.looseObject({
  /** The deploy plan of the branch (or of the promote), `lineage` set. */
  plan: DeployPlan,
  routes: z.array(RouteChange),
});
export type BranchPlanView = z.infer<typeof BranchPlanView>;
