/**
 * ployzd's public surface for code inside the daemon (the deploy engine plugs in here):
 * `DaemonPlugin` / `DaemonContext` (register RPC commands and local API routes, start/stop with the
 * daemon), the adopt-first planner, and the component specs.
 */
export { AgentRpc, escapeSubjectToken, nodeSubjectPrefix, type RpcHandler } from './agent-rpc.ts';
export { type Capacity, measureCapacity } from './capacity.ts';
export * from './component-spec.ts';
export {
  DAEMON_VERSION,
  Daemon,
  type DaemonContext,
  type DaemonPlugin,
  type DaemonStatus,
} from './daemon.ts';
export { DaemonConfig, parseDaemonConfig } from './daemon-config.ts';
export { type ComponentState, type ComponentStatus, DataPlane, type ReconcileSummary } from './data-plane.ts';
export { connectDocker, DockerEngine } from './docker-engine.ts';
export { LABEL } from './labels.ts';
export { type ApiHandler, LocalApi } from './local-api.ts';
export type { MachineIdentity } from './machine-identity.ts';
export { NatsLink } from './nats-link.ts';
export { type ComponentOutcome, executePlan, type ReconcileResult } from './reconcile-executor.ts';
export { type ObservedContainer, type PlannedAction, planReconcile } from './reconcile-plan.ts';
