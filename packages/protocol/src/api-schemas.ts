/**
 * Payloads of the daemon's local API. Objects are `looseObject`: the daemon may add fields
 * without breaking an older CLI; the fields named here are the contract.
 */
import {
  DeployCommit,
  DeployStatusRecord,
  ErrorSummary,
  MachineRecord,
  PhaseRecord,
  RoutingEvent,
  ServiceSpec,
} from '@ployz/types';
import { z } from 'zod';
import { CertificatesStatus } from './cert-commands.ts';
import { DeployEvent, DeployPlan } from './deploy-events.ts';
import { WireErrorBody } from './error-body.ts';
import { StoreStatusView } from './store-commands.ts';

/** The error of a failed call (the one wire error shape, error-body.ts). */
export const ApiErrorBody = WireErrorBody;

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
  /** The registry its data-plane images are pulled from (`--registry`); absent: none recorded. */
  image_registry: z.string().optional(),
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
  /** The image it runs and that image's version label; what this ployzd expects; set when they differ. */
  image_id: z.string().nullable().optional(),
  version: z.string().nullable().optional(),
  expected_image_id: z.string().nullable().optional(),
  skew: z.string().nullable().optional(),
});
export type ComponentStatusView = z.infer<typeof ComponentStatusView>;

export const ReconcileSummary = z.looseObject({
  at: z.string().optional(),
  adopted: z.number(),
  created: z.number(),
  recreated: z.number(),
  problems: z.number(),
  error: ErrorSummary.nullable(),
});

/** Host + path conflicts among committed releases (winner/loser as `namespace/service`). */
export const RoutesView = z.looseObject({
  conflicts: z.array(z.looseObject({ id: z.string(), winner: z.string(), loser: z.string() })),
  /** Why the conflicts could not be read; they are then unknown, not none. */
  error: z.string().nullable(),
});
export type RoutesView = z.infer<typeof RoutesView>;

/** `ployzctl status`, the `status` route and the `status` machine command: ployzd builds it. */
export const StatusView = z.looseObject({
  daemon: z.looseObject({
    pid: z.number(),
    version: z.string(),
    started_at: z.string(),
    socket: z.string(),
    state_dir: z.string(),
    /** How ployzd is kept running: `systemd`, `supervisor` (ployzd-supervise.sh) or `none`. */
    supervisor: z.string().optional(),
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
  /** null when no plugin reports route conflicts; absent from daemons older than the field. */
  routes: RoutesView.nullable().optional(),
  /** The join listener (docs/fleet.md): its host:port, null when not listening; absent before init. */
  join: z.looseObject({ address: z.string().nullable() }).nullable().optional(),
  /** ACME renewal (docs/adr/0015-acme.md): null before the store is reached; absent from older daemons. */
  certificates: CertificatesStatus.nullable().optional(),
  /** The store's replication and promotion (issue 19): null before the store is reached; absent from older daemons. */
  store: StoreStatusView.nullable().optional(),
});
export type StatusView = z.infer<typeof StatusView>;

export const MachineInitRequest = z.object({
  machine_id: z.string().optional(),
  installation: z.string().default('local'),
  authority: z.string().default('auth-default'),
  region: z.string().default('default'),
  /** `zfs:<pool>`, `btrfs:<path>` or `dir:<path>`; absent: the daemon's configured default. */
  storage: z.string().optional(),
  /** WireGuard endpoints (`ip:port`) for the machine record; absent: `<LAN address>:<WireGuard port>`. */
  endpoints: z.array(z.string()).optional(),
  /** `host[:port]` the data-plane images are pulled from (`<registry>/ployz/<component>:<version>`). */
  registry: z.string().optional(),
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

/**
 * `machine ls`: each record with what is true *now* — never stored (DESIGN.md §7): whether its
 * ployzd answered a ping just now (and how fast), and wg0's last handshake with it.
 */
export const MachineListEntry = MachineRecord.extend({
  live: z.object({
    reachable: z.boolean(),
    rtt_ms: z.number().nullable(),
    /** ISO time of wg0's latest handshake with this peer; null: none yet, or this machine itself. */
    handshake_at: z.string().nullable(),
    /** Why it is not reachable (no responder, timeout). */
    detail: z.string().nullable(),
  }),
});
export type MachineListEntry = z.infer<typeof MachineListEntry>;
export const MachineList = z.array(MachineListEntry);

/** `machine drain` / `machine rm`: the machine's record after the change. */
export const MachineDrainRequest = z.strictObject({ machine: MachineRecord.shape.id });
export const MachineDrainResult = z.object({ machine: MachineRecord, changed: z.boolean() });
export type MachineDrainResult = z.infer<typeof MachineDrainResult>;
export const MachineRemoveRequest = z.strictObject({ machine: MachineRecord.shape.id, force: z.boolean() });
export const MachineRemoveResult = MachineDrainResult.extend({
  /** What --force left behind: `<ns>/<service>#<slot>` and `<ns>/<volume>`. */
  abandoned: z.object({ slots: z.array(z.string()), volumes: z.array(z.string()) }),
});
export type MachineRemoveResult = z.infer<typeof MachineRemoveResult>;

/** `machine invite`: a token for one machine to join this installation. */
export const MachineInviteRequest = z.object({
  /** How long the token is good for, e.g. `1h`, `30m` (default 1h). */
  ttl: z.string().default('1h'),
  /** The joiner's region (default: `default`). */
  region: z.string().min(1).optional(),
  /** The WireGuard endpoints the token names for this machine (default: its record's). */
  endpoints: z.array(z.string()).optional(),
});
export type MachineInviteRequest = z.infer<typeof MachineInviteRequest>;

export const MachineInviteResult = z.object({
  token: z.string(),
  installation: z.string(),
  issuer: z.string(),
  /** host:port of this machine's join listener, which the joiner contacts. */
  join: z.string(),
  endpoints: z.array(z.string()),
  region: z.string().nullable(),
  expires_at: z.string(),
});
export type MachineInviteResult = z.infer<typeof MachineInviteResult>;

/** `machine join <token>` on a machine that is not initialised yet. */
export const MachineJoinRequest = z.object({
  token: z.string().min(1),
  machine_id: z.string().optional(),
  storage: z.string().optional(),
  endpoints: z.array(z.string()).optional(),
  /** As for init: where this machine pulls the data-plane images from. */
  registry: z.string().optional(),
});
export type MachineJoinRequest = z.infer<typeof MachineJoinRequest>;

const PublicKeys = z.object({ ployzd: z.string(), gateway: z.string(), dns: z.string() });

/** `machine credentials rotate`: the NKey public keys now and before, and who reconnected. */
export const CredentialsRotateResult = z.object({
  machine: z.string(),
  public_keys: PublicKeys,
  previous_public_keys: PublicKeys,
  /** Per component: the NATS server saw it on its new key, and no other, before the timeout. */
  reconnected: z.object({ ployzd: z.boolean(), gateway: z.boolean(), dns: z.boolean() }),
});
export type CredentialsRotateResult = z.infer<typeof CredentialsRotateResult>;

// ---------------------------------------------------------------- deploys

/** The manifest travels as text; the daemon parses it (errors carry file positions). */
export const DeployRequest = z.object({
  // No length cap of its own: the body cap bounds it, and the daemon answers MANIFEST_TOO_LARGE.
  manifest: z.string().min(1),
  filename: z.string().nullable().default(null),
  format: z.enum(['toml', 'json']).nullable().default(null),
  actor: z.string().nullable().default(null),
  /** Cold starts in flight per machine; null = the daemon's default (from the machine's cores). */
  start_concurrency: z.number().int().min(1).max(256).nullable().default(null),
  /** When the manifest is an earlier deploy's (a rollback): leave volumes without its snapshot as they are. */
  without_volume_revert: z.boolean().default(false),
});
export type DeployRequest = z.infer<typeof DeployRequest>;

export const RollbackRequest = z.object({
  deploy_id: z.string().min(1),
  actor: z.string().nullable().default(null),
  /** Restore the services only: volumes without a snapshot of the target keep their data. */
  without_volume_revert: z.boolean().default(false),
});
export type RollbackRequest = z.infer<typeof RollbackRequest>;

/** The plan of a deploy (deploy-events.ts): preview's answer, the `plan` event, the result's. */
export const DeployPlanView = DeployPlan;
export type DeployPlanView = DeployPlan;

/** One progress line of a long operation (apply, rollback): a deploy event. */
export const DeployProgress = DeployEvent;
export type DeployProgress = DeployEvent;

export const ApplyResultView = z.looseObject({
  noop: z.boolean(),
  plan: DeployPlanView,
  status: DeployStatusRecord.nullable(),
});
export type ApplyResultView = z.infer<typeof ApplyResultView>;

/** A namespace filter: a DNS label, as manifests name namespaces (never a store-key wildcard). */
const NamespaceFilter = ServiceSpec.shape.namespace.optional();

export const DeployListQuery = z.object({
  namespace: NamespaceFilter,
  /** Page size, newest first (default 20). */
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
  /** Only deploys older than this deploy id (the last id of the previous page). */
  before: z.string().min(1).optional(),
});
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
  namespace: NamespaceFilter,
  /** Keep the stream open for new events (default true). */
  follow: z.stringbool().default(true),
  /** First routing-event sequence to send (inclusive); default 1, the oldest kept. */
  from_seq: z.coerce.number().int().min(1).optional(),
});

export type EventsQuery = z.infer<typeof EventsQuery>;

const ROUTING_EVENT_TYPES = RoutingEvent.options.map((o) => o.shape.type.value);

/**
 * One line of the `events` route: a routing event as stored (`event`), its stream sequence, and
 * the fields that identify it whatever its type, flattened for printing and filtering (null
 * where the event does not name one).
 */
export const EventView = z.looseObject({
  seq: z.number().int().positive(),
  type: z.literal(ROUTING_EVENT_TYPES),
  at: z.string(),
  deploy_id: z.string().nullable(),
  namespace: z.string().nullable(),
  service: z.string().nullable(),
  instance: z.string().nullable(),
  machine: z.string().nullable(),
  event: RoutingEvent,
});
export type EventView = z.infer<typeof EventView>;

/** How an `events` stream ended: caught up (no follow) or the client went away (follow). */
export const EventsEnd = z.looseObject({
  reason: z.enum(['caught_up', 'client_closed']),
  /** Sequence of the last event sent (the start point minus one when none was). */
  last_seq: z.number().int().nonnegative(),
});
export type EventsEnd = z.infer<typeof EventsEnd>;
