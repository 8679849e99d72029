/**
 * The deploy plan and the deploy progress events as wire contracts: ployzd's planner and apply
 * produce these types (`z.infer`), the local API validates them on the way out, ployzctl switches
 * exhaustively over `DeployEvent['type']`. One shape for the plan everywhere (preview, the `plan`
 * event, the apply result).
 */
import { CommitPolicy, DeployStatusRecord, Lineage } from '@ployz/types';
import { z } from 'zod';
import { WireErrorBody } from './error-body.ts';
import { ImageEvent, ImagePlan } from './image-commands.ts';

/** The nine steps of an apply (DESIGN.md §5), in order. */
export const STEPS = [
  { step: 1, name: 'preview', title: 'preview the manifest against stored intent' },
  { step: 2, name: 'lease', title: 'acquire the namespace deploy lease' },
  { step: 3, name: 'probe', title: 'probe eligible machines for live capacity' },
  { step: 4, name: 'applying', title: 'write applying status and pending phase records' },
  { step: 5, name: 'phases', title: 'start candidates and wait for readiness' },
  { step: 6, name: 'checkpoints', title: 'append checkpoint commits' },
  { step: 7, name: 'final_commit', title: 'append the final commit (point of no return)' },
  { step: 8, name: 'routing', title: 'publish routing events' },
  { step: 9, name: 'cleanup', title: 'drain and remove old instances' },
] as const;

export type StepNumber = (typeof STEPS)[number]['step'];
export type StepName = (typeof STEPS)[number]['name'];
const StepNumber = z.union(STEPS.map((s) => z.literal(s.step)) as [z.ZodLiteral<StepNumber>]);
const StepName = z.enum(STEPS.map((s) => s.name) as [StepName, ...StepName[]]);

export const ServiceAction = z.enum(['create', 'replace', 'update', 'remove', 'unchanged']);
export type ServiceAction = z.infer<typeof ServiceAction>;
export const StopReason = z.enum(['replaced', 'moved', 'scaled_down', 'removed', 'orphan', 'lost']);
export type StopReason = z.infer<typeof StopReason>;

export const SlotPlan = z.object({
  slot: z.number().int(),
  machine: z.string(),
  instance: z.string(),
  action: z.enum(['start', 'keep']),
});
export type SlotPlan = z.infer<typeof SlotPlan>;

export const StopPlan = z.object({
  slot: z.number().int(),
  machine: z.string(),
  instance: z.string(),
  reason: StopReason,
});
export type StopPlan = z.infer<typeof StopPlan>;

export const ServicePlan = z.object({
  service: z.string(),
  action: ServiceAction,
  /** Target revision; null for `remove`. */
  revision: z.string().nullable(),
  previous_revision: z.string().nullable(),
  phase: z.string(),
  slots: z.array(SlotPlan),
  stops: z.array(StopPlan),
});
export type ServicePlan = z.infer<typeof ServicePlan>;

export const PhasePlan = z.object({
  id: z.string(),
  index: z.number().int(),
  commit_policy: CommitPolicy,
  services: z.array(z.string()),
  starts: z.number().int(),
  /** One line saying what the phase does. */
  does: z.string(),
});
export type PhasePlan = z.infer<typeof PhasePlan>;

/** What a deploy does to one volume (per slot) of the namespace. */
export const VolumePlan = z.object({
  volume: z.string(),
  machine: z.string(),
  scope: z.enum(['single', 'per_slot']),
  /**
   * snapshot: taken at the commit; revert: restored to the rollback target's snapshot before the
   * candidates start; not_reverted: a rollback leaves its data (no snapshot, --without-volume-revert);
   * no_snapshots: its storage (dir) takes none, so a rollback cannot revert it; clone: (branch) a
   * copy-on-write clone of the source's snapshot, made before the candidates start; empty: (branch)
   * a new volume, not cloned; replace: (promote --with-data) snapshotted, then its live data
   * replaced by the branch's. All but no_snapshots are also snapshotted at the commit.
   * keep: (namespace rm) the volume stays with its snapshots; delete: (namespace rm
   * --delete-volumes) a final snapshot `<deploy>-final`, then the volume goes, after the commit.
   */
  action: z.enum([
    'snapshot',
    'revert',
    'not_reverted',
    'no_snapshots',
    'clone',
    'empty',
    'replace',
    'keep',
    'delete',
  ]),
  /** `writer stop gap`: a single volume's old writer stops before the candidate starts. */
  detail: z.string(),
});
export type VolumePlan = z.infer<typeof VolumePlan>;

export const DeployPlan = z.object({
  namespace: z.string(),
  manifest_hash: z.string(),
  changed: z.boolean(),
  services: z.array(ServicePlan),
  phases: z.array(PhasePlan),
  volumes: z.array(VolumePlan).default([]),
  /** Per machine that gets a candidate, each image it starts: there, sent at the probe step, or missing. */
  images: z.array(ImagePlan).default([]),
  /** Set when this deploy restores an earlier one (its data too): `deploy rollback`, or its manifest again. */
  rollback_of: z.string().nullable().default(null),
  /** A branch's or a promote's lineage, as its commits will record it; null for any other deploy. */
  lineage: Lineage.nullable().default(null),
  summary: z.object({
    create: z.number().int(),
    replace: z.number().int(),
    update: z.number().int(),
    remove: z.number().int(),
    unchanged: z.number().int(),
    starts: z.number().int(),
    stops: z.number().int(),
  }),
});
export type DeployPlan = z.infer<typeof DeployPlan>;

export const InstanceAction = z.enum(['starting', 'ready', 'draining', 'removed', 'discarded']);
export type InstanceAction = z.infer<typeof InstanceAction>;

export const DeployEvent = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('step'),
    step: StepNumber,
    name: StepName,
    state: z.enum(['started', 'done', 'skipped']),
    phase: z.string().optional(),
    detail: z.string().optional(),
    at: z.string(),
  }),
  z.object({ type: z.literal('plan'), plan: DeployPlan }),
  z.object({
    type: z.literal('deploy'),
    deploy_id: z.string(),
    namespace: z.string(),
    rollback_of: z.string().nullable(),
  }),
  z.object({
    type: z.literal('instance'),
    action: InstanceAction,
    service: z.string(),
    slot: z.number().int(),
    machine: z.string(),
    instance: z.string(),
    at: z.string(),
    /** `ready`: from the container's start to its first passed check. */
    waited_ms: z.number().optional(),
    /** `ready`: candidates of this phase ready so far, of all (`12/40`). */
    progress: z.string().optional(),
  }),
  z.object({
    type: z.literal('machine'),
    machine: z.string(),
    available: z.boolean(),
    detail: z.string().optional(),
  }),
  z.object({
    type: z.literal('commit'),
    commit_id: z.string(),
    kind: z.enum(['checkpoint', 'final']),
    phase: z.string().nullable(),
  }),
  /**
   * Volume work: a snapshot at a commit, a stop-first writer stop, a rollback's revert and its undo,
   * a branch's clone (and its discard when the branch fails), a promote's replace.
   */
  z.object({
    type: z.literal('volume'),
    volume: z.string(),
    machine: z.string(),
    action: z.enum([
      'snapshot',
      'writer_stopped',
      'reverted',
      'restored',
      'pruned',
      'cloned',
      'replaced',
      'discarded',
      'retired',
    ]),
    detail: z.string(),
  }),
  /** An image sent to a machine that lacked it (the probe step), with its progress. */
  ImageEvent,
  /** Something the deploy could not do on its way out (it says what to check). */
  z.object({ type: z.literal('warning'), message: z.string() }),
  /** Test hook (PLOYZ_TEST_PAUSE_AT_STEP): the apply waits at this step. */
  z.object({ type: z.literal('paused'), step: z.number().int(), name: z.string(), pid: z.number().int() }),
  z.object({
    type: z.literal('result'),
    noop: z.boolean(),
    status: DeployStatusRecord.nullable(),
    plan: DeployPlan,
  }),
  z.object({
    type: z.literal('error'),
    error: WireErrorBody,
    state: DeployStatusRecord.shape.state.nullable(),
  }),
]);
export type DeployEvent = z.infer<typeof DeployEvent>;
export type DeployEventType = DeployEvent['type'];
