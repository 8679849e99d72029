export { type ApplyOptions, type ApplyResult, containerName } from './apply.ts';
export { type EngineOptions, leaseKey, leaseOwner } from './context.ts';
export { DockerWorkloads } from './docker-workloads.ts';
export { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
export { type DeployEvent, type EmitDeployEvent, STEPS } from './events.ts';
export type { DeployDetail } from './history.ts';
export { deployManifestOf, sealedRevisionCodec } from './manifest-adapter.ts';
export { MemoryDeployStore } from './memory-store.ts';
export { eligibleMachines, type MachineCapacity, placeService } from './placement.ts';
export { type DeployPlan, planDeploy, type ServicePlan } from './plan.ts';
export { deployPlugin, loadInstallationKey } from './plugin.ts';
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
export { DEPLOY_RPC, RpcMachineAgent } from './rpc-agent.ts';
export type { DeployManifest, DeployService, PhaseSpec, ReadinessSpec } from './spec.ts';
export { storeDeployPort } from './store-port.ts';
