/**
 * The local API as a declarative table: route name → method, path, input and output schemas,
 * and for long operations the schema of each NDJSON progress line. ployzd implements handlers
 * against it (`LocalApiServer.implement`), ployzctl calls it (`LocalApiClient`).
 *
 * GET routes read their input from the query string (values are strings); POST routes from a
 * JSON body.
 */
import type { z } from 'zod';
import {
  ApplyResultView,
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
  MachineInitRequest,
  MachineInitResult,
  MachineList,
  MachineShowResult,
  RollbackRequest,
  StatusView,
} from './api-schemas.ts';

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
    description: 'deploy statuses, oldest first, optionally of one namespace',
  },
  deployShow: {
    method: 'GET',
    path: '/v1/deploy',
    input: DeployShowQuery,
    output: DeployDetailView,
    progress: null,
    description: 'one deploy: status, phase records and commits',
  },
  deployRollback: {
    method: 'POST',
    path: '/v1/deploy/rollback',
    input: RollbackRequest,
    output: ApplyResultView,
    progress: DeployProgress,
    description: 'roll back to a committed deploy (a new deploy); progress streams',
  },
  events: {
    method: 'GET',
    path: '/v1/events',
    input: EventsQuery,
    output: EventsEnd,
    progress: EventView,
    description: 'deploy and routing events as they happen',
  },
});
export type Api = typeof api;
export type RouteName = keyof Api & string;

export type InputOf<T extends RouteTable, N extends keyof T> = z.input<T[N]['input']>;
export type OutputOf<T extends RouteTable, N extends keyof T> = z.output<T[N]['output']>;
export type ProgressOf<T extends RouteTable, N extends keyof T> = T[N]['progress'] extends z.ZodType
  ? z.output<T[N]['progress']>
  : never;
