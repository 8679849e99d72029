/**
 * The local API as a declarative table: route name → method, path, input and output schemas,
 * and for long operations the schema of each NDJSON progress line. ployzd implements handlers
 * against it (`LocalApiServer.implement`), ployzctl calls it (`LocalApiClient`).
 *
 * GET routes read their input from the query string (values are strings); POST routes from a
 * JSON body.
 */
import { z } from 'zod';
import {
  ApplyResultView,
  CredentialsRotateResult,
  DeployDetailView,
  DeployList,
  DeployListQuery,
  DeployPlanView,
  DeployProgress,
  DeployRequest,
  DeployShowQuery,
  Empty,
  EventsEnd,
  EventsQuery,
  EventView,
  MachineDrainRequest,
  MachineDrainResult,
  MachineInitRequest,
  MachineInitResult,
  MachineInviteRequest,
  MachineInviteResult,
  MachineJoinRequest,
  MachineList,
  MachineRemoveRequest,
  MachineRemoveResult,
  MachineShowResult,
  RollbackRequest,
  StatusView,
} from './api-schemas.ts';
import { BranchPlanView, BranchRequest, PromoteRequest } from './branch-commands.ts';
import { CertificateList, CertificateShowQuery, CertificateView } from './cert-commands.ts';
import { ImageEvent, ImagePushRequest, ImagePushResult } from './image-commands.ts';
import {
  LogsEnd,
  LogsEntry,
  LogsQuery,
  NamespaceList,
  NamespaceRemoveRequest,
  PsQuery,
  PsView,
} from './ops-commands.ts';
import {
  RegistryList,
  RegistryLoginRequest,
  RegistryLoginResult,
  RegistryLogoutRequest,
  RegistryLogoutResult,
} from './registry-commands.ts';
import {
  StoragePromotePlanView,
  StoragePromoteProgress,
  StoragePromoteRequest,
  StoragePromoteResult,
} from './store-commands.ts';
import { VolumeList, VolumeListQuery, VolumeShowQuery, VolumeShowView } from './volume-commands.ts';

export interface RouteSpec {
  method: 'GET' | 'POST';
  path: `/v1/${string}`;
  input: z.ZodType;
  output: z.ZodType;
  /** Schema of each progress line for streamed (NDJSON) routes; null for plain JSON. */
  progress: z.ZodType | null;
  description: string;
}

export type RouteTable = Record<string, RouteSpec>;

function defineRoutes<T extends Record<string, RouteSpec>>(routes: T): T {
  const seen = new Set<string>();
  for (const [name, r] of Object.entries(routes)) {
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) throw new Error(`route ${name}: ${key} is declared twice`);
    seen.add(key);
  }
  return routes;
}

export const api = defineRoutes({
  status: {
    method: 'GET',
    path: '/v1/status',
    input: Empty,
    output: StatusView,
    progress: null,
    description: 'daemon, machine, components, NATS and agent status',
  },
  machineInit: {
    method: 'POST',
    path: '/v1/machine/init',
    input: MachineInitRequest,
    output: MachineInitResult,
    progress: null,
    description: 'create this machine identity and bring up the data plane',
  },
  machineShow: {
    method: 'GET',
    path: '/v1/machine',
    input: Empty,
    output: MachineShowResult,
    progress: null,
    description: "this machine's identity and stored record",
  },
  machineList: {
    method: 'GET',
    path: '/v1/machines',
    input: Empty,
    output: MachineList,
    progress: null,
    description: 'every machine record of the installation',
  },
  machineDrain: {
    method: 'POST',
    path: '/v1/machine/drain',
    input: MachineDrainRequest,
    output: MachineDrainResult,
    progress: null,
    description: 'no new placements on the machine; the next deploy of each namespace moves its slots',
  },
  machineRemove: {
    method: 'POST',
    path: '/v1/machine/rm',
    input: MachineRemoveRequest,
    output: MachineRemoveResult,
    progress: null,
    description: 'remove a machine: refused while it runs slots or holds volumes, unless force',
  },
  machineInvite: {
    method: 'POST',
    path: '/v1/machine/invite',
    input: MachineInviteRequest,
    output: MachineInviteResult,
    progress: null,
    description: 'a signed, expiring, single-use token for one machine to join this installation',
  },
  machineJoin: {
    method: 'POST',
    path: '/v1/machine/join',
    input: MachineJoinRequest,
    output: MachineInitResult,
    progress: null,
    description:
      'join an installation with an invite (verified by its issuer first), then bring up the data plane',
  },
  machineCredentialsRotate: {
    method: 'POST',
    path: '/v1/machine/credentials/rotate',
    input: Empty,
    output: CredentialsRotateResult,
    progress: null,
    description: "new NATS NKeys for this machine's ployzd, gateway and dns; the old ones stop working",
  },
  deployPreview: {
    method: 'POST',
    path: '/v1/deploy/preview',
    input: DeployRequest,
    output: DeployPlanView,
    progress: null,
    description: 'plan a manifest against stored intent, changing nothing',
  },
  deployApply: {
    method: 'POST',
    path: '/v1/deploy/apply',
    input: DeployRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description: 'apply a manifest; progress streams as deploy events',
  },
  deployList: {
    method: 'GET',
    path: '/v1/deploys',
    input: DeployListQuery,
    output: DeployList,
    progress: null,
    description: 'one page of deploy statuses, newest first (limit, before), optionally of one namespace',
  },
  deployShow: {
    method: 'GET',
    path: '/v1/deploy',
    input: DeployShowQuery,
    output: DeployDetailView,
    progress: null,
    description: 'one deploy: status, phase records and commits',
  },
  volumeList: {
    method: 'GET',
    path: '/v1/volumes',
    input: VolumeListQuery,
    output: VolumeList,
    progress: null,
    description: 'the committed volume records, optionally of one namespace',
  },
  volumeShow: {
    method: 'GET',
    path: '/v1/volume',
    input: VolumeShowQuery,
    output: VolumeShowView,
    progress: null,
    description:
      'one volume: its record (snapshots by deploy) and what its machine says now (usage, owner, mode)',
  },
  deployRollback: {
    method: 'POST',
    path: '/v1/deploy/rollback',
    input: RollbackRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description: 'roll back to a committed deploy (a new deploy); progress streams',
  },
  branchPreview: {
    method: 'POST',
    path: '/v1/branch/preview',
    input: BranchRequest,
    output: BranchPlanView,
    progress: null,
    description:
      "plan a branch: the source's committed services, cloned volumes and new hostnames; nothing changes",
  },
  branchApply: {
    method: 'POST',
    path: '/v1/branch/apply',
    input: BranchRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description:
      'create a branch namespace as a deploy: volumes cloned from the source snapshot, lineage committed',
  },
  branchPromotePreview: {
    method: 'POST',
    path: '/v1/branch/promote/preview',
    input: PromoteRequest,
    output: BranchPlanView,
    progress: null,
    description: "plan a promote: the branch's services into its source (its data with with_data)",
  },
  branchPromote: {
    method: 'POST',
    path: '/v1/branch/promote',
    input: PromoteRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description:
      "deploy a branch's services into its source as a deploy, lineage committed; progress streams",
  },
  imagePush: {
    method: 'POST',
    path: '/v1/image/push',
    input: ImagePushRequest,
    output: ImagePushResult,
    progress: ImageEvent,
    description:
      'send a local image to one machine, or to every eligible machine that lacks it (by id), over the mesh',
  },
  registryLogin: {
    method: 'POST',
    path: '/v1/registry/login',
    input: RegistryLoginRequest,
    output: RegistryLoginResult,
    progress: null,
    description:
      "store a registry's credentials for the installation (sealed; checked with the registry first unless verify is false)",
  },
  registryList: {
    method: 'GET',
    path: '/v1/registries',
    input: Empty,
    output: RegistryList,
    progress: null,
    description: 'the registries the installation holds credentials for (host, username; never the password)',
  },
  registryLogout: {
    method: 'POST',
    path: '/v1/registry/logout',
    input: RegistryLogoutRequest,
    output: RegistryLogoutResult,
    progress: null,
    description: "remove a registry's credentials from the installation",
  },
  ps: {
    method: 'GET',
    path: '/v1/ps',
    input: PsQuery,
    output: PsView,
    progress: null,
    description:
      'per service its instances: machine, state, readiness and why not routable, revision, deploy, ports',
  },
  logs: {
    method: 'GET',
    path: '/v1/logs',
    input: LogsQuery,
    output: LogsEnd,
    progress: LogsEntry,
    description:
      "a service's log lines from every instance on every machine, merged by time; with follow, new instances join",
  },
  namespaceList: {
    method: 'GET',
    path: '/v1/namespaces',
    input: Empty,
    output: NamespaceList,
    progress: null,
    description: 'each namespace with a committed deploy: services, instances, hostnames, last deploy',
  },
  namespaceRemove: {
    method: 'POST',
    path: '/v1/namespace/rm',
    input: NamespaceRemoveRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description: 'remove every service of a namespace as a deploy (lease, plan, commit, routing, cleanup)',
  },
  events: {
    method: 'GET',
    path: '/v1/events',
    input: EventsQuery,
    output: EventsEnd,
    progress: EventView,
    description: 'routing events from a sequence, as NDJSON lines; with follow, new ones as they happen',
  },
  certList: {
    method: 'GET',
    path: '/v1/certs',
    input: Empty,
    output: CertificateList,
    progress: null,
    description:
      'the certificates of tls = "auto" routes (ACME): serial, lifetime, renewal time and state, failures',
  },
  certShow: {
    method: 'GET',
    path: '/v1/cert',
    input: CertificateShowQuery,
    output: CertificateView,
    progress: null,
    description: "one hostname's certificate and renewal state, with the directory's last error",
  },
  storagePromotePlan: {
    method: 'POST',
    path: '/v1/storage/promote/plan',
    input: StoragePromoteRequest,
    output: StoragePromotePlanView,
    progress: null,
    description:
      'the plan of a store promotion 1 → 3 (what moves, each guardrail); changes nothing (issue 19)',
  },
  storagePromoteApply: {
    method: 'POST',
    path: '/v1/storage/promote/apply',
    input: StoragePromoteRequest,
    output: StoragePromoteResult,
    progress: StoragePromoteProgress,
    description:
      'run a store promotion 1 → 3: members started, the copy verified, the commit point, every machine switched over; progress streams',
  },
});
export type Api = typeof api;
export type RouteName = keyof Api & string;

export type InputOf<T extends RouteTable, N extends keyof T> = z.input<T[N]['input']>;
export type OutputOf<T extends RouteTable, N extends keyof T> = z.output<T[N]['output']>;
/** The progress line of a streamed route; `never` for a plain one (its `progress` is null). */
export type ProgressOf<T extends RouteTable, N extends keyof T> = z.output<
  Extract<T[N]['progress'], z.ZodType>
>;

// Parsing with one route's schemas, typed by that route. Generic over the route spec `S` (the
// caller names it, e.g. `Api[N]`): zod's free `safeParse` keeps `z.output<S['input']>`, where
// `spec.input.safeParse` on a generic route would widen to the outputs of every route.

export function parseInput<S extends RouteSpec>(spec: S, value: unknown) {
  return z.safeParse<S['input']>(spec.input, value);
}

export function parseOutput<S extends RouteSpec>(spec: S, value: unknown) {
  return z.safeParse<S['output']>(spec.output, value);
}

/** True for a streamed route (its `progress` is a schema). */
function streams<S extends RouteSpec>(spec: S): spec is S & { progress: Extract<S['progress'], z.ZodType> } {
  return spec.progress !== null;
}

/** null for a route without progress lines. */
export function parseProgress<S extends RouteSpec>(spec: S, value: unknown) {
  return streams(spec) ? z.safeParse<Extract<S['progress'], z.ZodType>>(spec.progress, value) : null;
}
