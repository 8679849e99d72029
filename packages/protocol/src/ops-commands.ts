/**
 * The operator commands that look inside a deploy (`ployzctl ps`, `logs`, `exec`, `namespace
 * ls|rm`): the local API bodies, and the machine commands the coordinating ployzd sends to the
 * machine holding an instance (`logs_read`, `exec_open`, `exec_io` on
 * `…rpc.node.<machine>.<command>`). Every machine-command body names the machine it is for and
 * the workload it reads, and the handler acts only on its own managed containers.
 *
 * The RPC layer is request/reply, so a stream over it is chunked with a cursor: `logs_read`
 * answers the lines after a cursor (at most `limit`), and an exec session is pumped by `exec_io`
 * calls that carry stdin and return the output produced since the last one.
 */
import { DeployStatusRecord, InstanceId, InstanceState, MachineId, ServiceSpec } from '@ployz/types';
import { z } from 'zod';
import { WireErrorBody } from './error-body.ts';
import { defineCommands } from './rpc.ts';

export const OPS_RPC = { logsRead: 'logs_read', execOpen: 'exec_open', execIo: 'exec_io' } as const;

const Name = ServiceSpec.shape.name;
const Namespace = ServiceSpec.shape.namespace;

/** A log line's time: RFC 3339 UTC with nine fraction digits, so that text order is time order. */
export const LogTime = z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

export const LogStream = z.enum(['stdout', 'stderr']);
export type LogStream = z.infer<typeof LogStream>;

/** Where a reader stopped: the time of the last line it has and how many lines it has at that time. */
export const LogCursor = z.strictObject({ at: LogTime, seen: z.number().int().min(1) });
export type LogCursor = z.infer<typeof LogCursor>;

// ---------------------------------------------------------------- ps

export const PsQuery = z.object({ namespace: Namespace.optional() });

export const PsInstance = z.looseObject({
  instance: z.string(),
  slot: z.number().int().nonnegative(),
  machine: z.string(),
  state: InstanceState,
  ready: z.boolean(),
  /** Why traffic does not reach it (@ployz/routing's reason); null when it does. */
  unroutable: z.string().nullable(),
  /** The instance is in the committed release (not a leftover or a candidate). */
  active: z.boolean(),
  revision: z.string(),
  deploy: z.string(),
  ip: z.string().nullable(),
  /** Named ports: name → container port. */
  ports: z.record(z.string(), z.number().int()),
  created_at: z.string(),
  error: z.string().nullable(),
});
export type PsInstance = z.infer<typeof PsInstance>;

export const PsService = z.looseObject({
  namespace: z.string(),
  service: z.string(),
  /** The committed release's revision and deploy; null for instances no release names. */
  revision: z.string().nullable(),
  deploy: z.string().nullable(),
  instances: z.array(PsInstance),
});
export type PsService = z.infer<typeof PsService>;

export const PsView = z.looseObject({
  /** The daemon's clock when it read the records (ages are relative to it). */
  at: z.string(),
  services: z.array(PsService),
});
export type PsView = z.infer<typeof PsView>;

// ---------------------------------------------------------------- logs

export const LogsQuery = z.object({
  namespace: Namespace,
  service: Name,
  instance: InstanceId.optional(),
  follow: z.stringbool().default(false),
  /** Only lines at or after this time (RFC 3339). */
  since: z.iso.datetime({ offset: true }).optional(),
  /** The last N lines of each instance before following. */
  tail: z.coerce.number().int().min(0).max(100_000).optional(),
});
export type LogsQuery = z.infer<typeof LogsQuery>;

/** One progress line of the `logs` route: a log line, an instance joining or leaving, a machine missing. */
export const LogsEntry = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('line'),
    at: LogTime,
    instance: z.string(),
    machine: z.string(),
    stream: LogStream,
    text: z.string(),
  }),
  z.looseObject({
    type: z.literal('instance'),
    event: z.enum(['joined', 'left']),
    instance: z.string(),
    machine: z.string(),
  }),
  z.looseObject({
    type: z.literal('unreachable'),
    instance: z.string(),
    machine: z.string(),
    error: WireErrorBody,
  }),
]);
export type LogsEntry = z.infer<typeof LogsEntry>;
export type LogsLine = Extract<LogsEntry, { type: 'line' }>;

export const LogsEnd = z.looseObject({
  lines: z.number().int().nonnegative(),
  instances: z.array(z.string()),
  /** Instances whose machine did not answer (their lines are missing). */
  unreachable: z.array(z.string()),
  reason: z.enum(['caught_up', 'client_closed']),
});
export type LogsEnd = z.infer<typeof LogsEnd>;

const Workload = {
  machine: MachineId,
  namespace: Namespace,
  service: Name,
  instance: InstanceId.max(200),
};

export const LogsReadBody = z.strictObject({
  ...Workload,
  /** Lines after this cursor; null: from `since` (or the start). */
  after: LogCursor.nullable(),
  since: LogTime.nullable(),
  /** Only the last N lines (with `after` null). */
  tail: z.number().int().min(0).max(100_000).nullable(),
  limit: z.number().int().min(1).max(10_000),
});
export type LogsReadBody = z.infer<typeof LogsReadBody>;

export const LogChunkLine = z.strictObject({ at: LogTime, stream: LogStream, text: z.string() });
export type LogChunkLine = z.infer<typeof LogChunkLine>;

export const LogsReadResult = z.strictObject({
  lines: z.array(LogChunkLine),
  /** The cursor after the last line answered (the one given when none was). */
  cursor: LogCursor.nullable(),
  /** False when `limit` cut the answer: ask again from `cursor` at once. */
  complete: z.boolean(),
  /** The container is gone (removed by a deploy): nothing more will come. */
  gone: z.boolean(),
});
export type LogsReadResult = z.infer<typeof LogsReadResult>;

// ---------------------------------------------------------------- exec

const Argv = z.array(z.string().max(100_000)).min(1).max(1000);
const TtySize = z.strictObject({
  cols: z.number().int().min(1).max(10_000),
  rows: z.number().int().min(1).max(10_000),
});

/** `exec`: the local API's tunnel input (the request is upgraded to exec frames, exec-tunnel.ts). */
export const ExecRequest = z.object({
  namespace: Namespace,
  service: Name,
  instance: InstanceId.optional(),
  command: Argv,
  tty: z.boolean().default(false),
  /** Attach stdin (`-i`). */
  stdin: z.boolean().default(false),
  size: TtySize.nullable().default(null),
});
export type ExecRequest = z.infer<typeof ExecRequest>;

export const ExecOpenBody = z.strictObject({
  ...Workload,
  command: Argv,
  tty: z.boolean(),
  stdin: z.boolean(),
  size: TtySize.nullable(),
});
export type ExecOpenBody = z.infer<typeof ExecOpenBody>;

const Base64 = z
  .string()
  .max(2_000_000)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/);

export const ExecIoBody = z.strictObject({
  machine: MachineId,
  session: z.string().regex(/^[0-9a-f]{32}$/),
  /** Bytes for the process's stdin (base64). */
  stdin: Base64,
  /** stdin is at its end: close it. */
  eof: z.boolean(),
  resize: TtySize.nullable(),
  /** How long to wait for output when none is buffered yet. */
  wait_ms: z.number().int().min(0).max(10_000),
});
export type ExecIoBody = z.infer<typeof ExecIoBody>;

export const ExecIoResult = z.strictObject({
  stdout: Base64,
  stderr: Base64,
  /** Set once the process has exited and all its output is in this or an earlier answer. */
  exit_code: z.number().int().nullable(),
});
export type ExecIoResult = z.infer<typeof ExecIoResult>;

export const opsCommands = defineCommands({
  [OPS_RPC.logsRead]: {
    request: LogsReadBody,
    response: LogsReadResult,
    description: "one chunk of an instance's log lines after a cursor",
  },
  [OPS_RPC.execOpen]: {
    request: ExecOpenBody,
    response: z.strictObject({ session: z.string() }),
    description: 'start a command in an instance; its input and output go through exec_io',
  },
  [OPS_RPC.execIo]: {
    request: ExecIoBody,
    response: ExecIoResult,
    description: 'send stdin to an exec session and take the output it produced since the last call',
  },
});
export type OpsCommands = typeof opsCommands;

// ---------------------------------------------------------------- namespaces

export const NamespaceView = z.looseObject({
  namespace: z.string(),
  services: z.array(z.string()),
  instances: z.number().int().nonnegative(),
  /** Instances traffic reaches now. */
  routable: z.number().int().nonnegative(),
  hostnames: z.array(z.string()),
  last_deploy: DeployStatusRecord.nullable(),
});
export type NamespaceView = z.infer<typeof NamespaceView>;

export const NamespaceList = z.looseObject({ namespaces: z.array(NamespaceView) });
export type NamespaceList = z.infer<typeof NamespaceList>;

export const NamespaceRemoveRequest = z.object({
  namespace: Namespace,
  actor: z.string().nullable().default(null),
  /** Only the plan: what would go. */
  preview: z.boolean().default(false),
  /** Each volume gets a final snapshot `<deploy>-final`, then goes (after the commit); kept otherwise. */
  delete_volumes: z.boolean().default(false),
});
export type NamespaceRemoveRequest = z.infer<typeof NamespaceRemoveRequest>;
