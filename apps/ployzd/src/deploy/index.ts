export { type ApplyOptions, type ApplyResult, containerName } from './apply.ts';
export { type EngineOptions, leaseKey, leaseOwner } from './context.ts';
export { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
export { type DeployEvent, type EmitDeployEvent, STEPS } from './events.ts';
export type { DeployDetail } from './history.ts';
export { MemoryDeployStore } from './memory-store.ts';
export { eligibleMachines, type MachineCapacity, placeService } from './placement.ts';
export { type DeployPlan, planDeploy, type ServicePlan } from './plan.ts';
export type {
  Clock,
  DeployStore,
  HeldLease,
  MachineAgent,
  RevisionCodec,
  StartRequest,
  StopRequest,
} from './ports.ts';
export { systemClock } from './ports.ts';
export type { RecoveryReport } from './recovery.ts';
export { plainRevisionCodec } from './revision-codec.ts';
export type { DeployManifest, DeployService, PhaseSpec, ReadinessSpec } from './spec.ts';
