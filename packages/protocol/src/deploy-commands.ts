/**
 * The bodies of the deploy commands a machine answers (`deploy_start`, `deploy_ready`,
 * `deploy_stop` on `…rpc.node.<machine>.<command>`), one strict schema each, inferred on both
 * the caller (the deploy engine) and the handler (the participant daemon).
 *
 * A start carries the service as the manifest parsed it (@ployz/types `ServiceSpec`: names are
 * DNS labels, volumes are names), never host paths: the handler resolves volume directories
 * under its own volume root. Every body names the machine it is for; a handler answers only
 * for its own.
 */
import { DeployId, InstanceId, MachineId, RevisionId, ServiceSpec, VolumeSpec } from '@ployz/types';
import { z } from 'zod';
import { defineCommands } from './rpc.ts';

export const DEPLOY_RPC = { start: 'deploy_start', ready: 'deploy_ready', stop: 'deploy_stop' } as const;

const Name = ServiceSpec.shape.name;
const Instance = InstanceId.max(200);
const Millis = z.number().int().nonnegative();

export const DeployStartBody = z.strictObject({
  namespace: ServiceSpec.shape.namespace,
  service: ServiceSpec,
  /**
   * The declarations of the volumes the service mounts (quota, owner, mode, scope): the handler
   * creates or adopts each on its own storage; a per-slot one is `<volume>-<slot>`.
   */
  volumes: z.array(VolumeSpec).max(64),
  revision: RevisionId,
  deploy: DeployId,
  instance: Instance,
  slot: z.number().int().nonnegative(),
  machine: MachineId,
});
export type DeployStartBody = z.infer<typeof DeployStartBody>;

/** A readiness check as the engine runs it: ports already resolved to container port numbers. */
export const DeployReadiness = z.strictObject({
  kind: z.enum(['http', 'tcp', 'exec']),
  path: z.string().startsWith('/').optional(),
  port: z.number().int().min(1).max(65535).optional(),
  command: z.array(z.string()).min(1).optional(),
  interval_ms: Millis,
  timeout_ms: Millis,
  retries: z.number().int().min(1),
  start_period_ms: Millis,
  start_timeout_ms: Millis.optional(),
});
export type DeployReadiness = z.infer<typeof DeployReadiness>;

export const DeployReadyBody = z.strictObject({
  machine: MachineId,
  instance: z.strictObject({
    container_id: z.string().regex(/^[0-9a-f]{12,64}$/),
    ip: z.ipv4().nullable(),
    name: z.string().min(1),
  }),
  readiness: DeployReadiness.nullable(),
});
export type DeployReadyBody = z.infer<typeof DeployReadyBody>;

export const DeployStopBody = z.strictObject({
  namespace: Name,
  service: Name,
  instance: Instance,
  machine: MachineId,
  stop_grace_ms: Millis,
});
export type DeployStopBody = z.infer<typeof DeployStopBody>;

export const DeployStarted = z.strictObject({
  container_id: z.string(),
  ip: z.string().nullable(),
  /** The container's name on the participant (its own container prefix). */
  name: z.string(),
});
export type DeployStarted = z.infer<typeof DeployStarted>;

/** The participant side of a deploy, one command per step a machine takes part in. */
export const deployCommands = defineCommands({
  [DEPLOY_RPC.start]: {
    request: DeployStartBody,
    response: DeployStarted,
    description: 'create and start one instance container',
  },
  [DEPLOY_RPC.ready]: {
    request: DeployReadyBody,
    response: z.strictObject({ ready: z.literal(true) }),
    description: 'wait until an instance passes its readiness check',
  },
  [DEPLOY_RPC.stop]: {
    request: DeployStopBody,
    response: z.strictObject({ stopped: z.literal(true) }),
    description: 'stop and remove one instance container',
  },
});
export type DeployCommands = typeof deployCommands;
