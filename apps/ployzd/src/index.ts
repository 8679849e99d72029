/**
 * ployzd's public surface for code inside the daemon (the deploy engine plugs in here):
 * `DaemonPlugin` / `DaemonContext` (`registerCommands(registry, handlers)` for machine RPC over
 * @ployz/protocol's RpcServer, `implement(route, handler)` for routes of @ployz/protocol's `api`
 * table; start/stop with the daemon), the adopt-first planner, and the component specs. Label
 * names are @ployz/identity's `LABELS`.
 */
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
export { CapacityView, type MachineCommands, machineCommands } from './machine-commands.ts';
export type { MachineIdentity } from './machine-identity.ts';
export { NatsLink } from './nats-link.ts';
export { type ComponentOutcome, executePlan, type ReconcileResult } from './reconcile-executor.ts';
export { type ObservedContainer, type PlannedAction, planReconcile } from './reconcile-plan.ts';
