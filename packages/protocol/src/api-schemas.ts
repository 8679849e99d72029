/**
 * Payloads of the daemon's local API. Objects are `looseObject`: the daemon may add fields
 * without breaking an older CLI; the fields named here are the contract.
 */
import { DeployCommit, DeployStatusRecord, MachineRecord, PhaseRecord } from '@ployz/types';
import { z } from 'zod';

export const ApiErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const Empty = z.looseObject({});

// ---------------------------------------------------------------- status and machines

export const MachineIdentityView = z.looseObject({
  installation: z.string(),
  authority: z.string(),
  machine_id: z.string(),
  public_key: z.string(),
  overlay_ip: z.string(),
  subnet: z.string(),
  region: z.string(),
  created_at: z.string(),
});
export type MachineIdentityView = z.infer<typeof MachineIdentityView>;

export const ComponentStatusView = z.looseObject({
  component: z.string(),
  container_name: z.string(),
  container_id: z.string().nullable(),
  state: z.string(),
  reason: z.string().nullable(),
  detail: z.string().nullable(),
  since: z.string().nullable(),
  running: z.boolean(),
  health: z.string(),
});
export type ComponentStatusView = z.infer<typeof ComponentStatusView>;

const ErrorSummary = z.object({ code: z.string(), message: z.string() });

export const ReconcileSummary = z.looseObject({
  at: z.string().optional(),
  adopted: z.number(),
  created: z.number(),
  recreated: z.number(),
  problems: z.number(),
  error: ErrorSummary.nullable(),
});

export const StatusView = z.looseObject({
  daemon: z.looseObject({
    pid: z.number(),
    version: z.string(),
    started_at: z.string(),
    socket: z.string(),
    state_dir: z.string(),
  }),
  initialised: z.boolean(),
  machine: MachineIdentityView.extend({ record_stored: z.boolean() }).nullable(),
  reconcile: ReconcileSummary.nullable(),
  components: z.array(ComponentStatusView),
  nats: z
    .looseObject({
      url: z.string(),
      state: z.string(),
      since: z.string(),
      last_error: z.string().nullable(),
      rtt_ms: z.number().nullable(),
    })
    .nullable(),
  agent: z
    .looseObject({ subject: z.string(), commands: z.array(z.string()), listening: z.boolean() })
    .nullable(),
});
export type StatusView = z.infer<typeof StatusView>;

export const MachineInitRequest = z.object({
  machine_id: z.string().optional(),
  installation: z.string().default('local'),
  authority: z.string().default('auth-default'),
  region: z.string().default('default'),
});
export type MachineInitRequest = z.infer<typeof MachineInitRequest>;

export const MachineInitResult = z.looseObject({
  machine: MachineIdentityView,
  reconcile: ReconcileSummary.nullable(),
  components: z.array(ComponentStatusView),
});
export type MachineInitResult = z.infer<typeof MachineInitResult>;

export const MachineShowResult = z.looseObject({
  machine: MachineIdentityView,
  record: MachineRecord.nullable(),
});
export type MachineShowResult = z.infer<typeof MachineShowResult>;

export const MachineList = z.array(MachineRecord);

// ---------------------------------------------------------------- deploys

/** The manifest travels as text; the daemon parses it (errors carry file positions). */
export const DeployRequest = z.object({
  manifest: z.string().min(1).max(1_000_000),
  filename: z.string().nullable().default(null),
  format: z.enum(['toml', 'json']).nullable().default(null),
  actor: z.string().nullable().default(null),
});
export type DeployRequest = z.infer<typeof DeployRequest>;

export const RollbackRequest = z.object({
  deploy_id: z.string().min(1),
  actor: z.string().nullable().default(null),
});
export type RollbackRequest = z.infer<typeof RollbackRequest>;

export const ServicePlanView = z.looseObject({
  service: z.string(),
  action: z.enum(['create', 'replace', 'update', 'remove', 'unchanged']),
  revision: z.string().nullable(),
  previous_revision: z.string().nullable(),
  phase: z.string(),
  slots: z.array(
    z.looseObject({ slot: z.number(), machine: z.string(), instance: z.string(), action: z.string() }),
  ),
  stops: z.array(
    z.looseObject({ slot: z.number(), machine: z.string(), instance: z.string(), reason: z.string() }),
  ),
});

export const DeployPlanView = z.looseObject({
  namespace: z.string(),
  manifest_hash: z.string(),
  changed: z.boolean(),
  services: z.array(ServicePlanView),
  phases: z.array(z.looseObject({ id: z.string(), index: z.number(), commit_policy: z.string() })),
  summary: z.looseObject({
    create: z.number(),
    replace: z.number(),
    update: z.number(),
    remove: z.number(),
    unchanged: z.number(),
    starts: z.number(),
    stops: z.number(),
  }),
});
export type DeployPlanView = z.infer<typeof DeployPlanView>;

/** One progress line of a long operation (apply, rollback): a deploy event with a `type`. */
export const DeployProgress = z.looseObject({ type: z.string() });
export type DeployProgress = z.infer<typeof DeployProgress>;

export const ApplyResultView = z.looseObject({
  noop: z.boolean(),
  plan: DeployPlanView,
  status: DeployStatusRecord.nullable(),
});
export type ApplyResultView = z.infer<typeof ApplyResultView>;

export const DeployListQuery = z.object({ namespace: z.string().optional() });
export const DeployList = z.array(DeployStatusRecord);

export const DeployShowQuery = z.object({ id: z.string().min(1) });
export const DeployDetailView = z.looseObject({
  status: DeployStatusRecord,
  phases: z.array(PhaseRecord),
  commits: z.array(DeployCommit),
});
export type DeployDetailView = z.infer<typeof DeployDetailView>;

// ---------------------------------------------------------------- events

export const EventsQuery = z.object({
  namespace: z.string().optional(),
  /** Keep the stream open for new events (default true). */
  follow: z.stringbool().default(true),
  /** First routing-event sequence to send (inclusive); default 1, the oldest kept. */
  from_seq: z.coerce.number().int().min(1).optional(),
});

/** One event line: a deploy event or a routing fact, with its time. */
export const EventView = z.looseObject({ type: z.string(), at: z.string().optional() });
export type EventView = z.infer<typeof EventView>;

export const EventsEnd = z.looseObject({ reason: z.string() });
