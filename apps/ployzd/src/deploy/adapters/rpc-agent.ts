/**
 * The MachineAgent port over machine-command RPC (@ployz/protocol's RpcClient on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`), the caller side of @ployz/protocol's
 * `deployCommands`. The participant side is rpc-handlers.ts. No responder or a timeout is a
 * PloyzError to the caller (RPC_NO_RESPONDERS / RPC_TIMEOUT); nothing is retried here.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { DEPLOY_RPC, type DeployStartBody, deployCommands, RpcClient } from '@ployz/protocol';
import { PloyzError, ServiceSpec } from '@ployz/types';
import { machineCommands } from '../../daemon/machine-commands.ts';
import { capacityFromProbe } from '../../workloads/docker-workloads.ts';
import { readinessBudgetMs } from '../../workloads/readiness.ts';
import type { MachineCapacity } from '../model/placement.ts';
import type { ReadinessSpec } from '../model/spec.ts';
import type { MachineAgent, StartedInstance, StartRequest, StopRequest } from '../ports.ts';

export { DEPLOY_RPC, deployCommands };

const agentCommands = { ...machineCommands, ...deployCommands };

/**
 * The wire body of a start: the service as the manifest parsed it and the declarations of the
 * volumes it mounts (no host paths: the participant creates or adopts them on its own storage).
 */
export function startBodyOf(request: StartRequest): DeployStartBody {
  const spec = ServiceSpec.safeParse(request.service.source);
  if (!spec.success) {
    throw new PloyzError('INTERNAL', `service '${request.service.name}' carries no manifest service spec`, {
      details: { service: request.service.name, issues: spec.error.issues },
    });
  }
  return {
    namespace: request.namespace,
    service: spec.data,
    volumes: request.service.volumes,
    revision: request.revision,
    deploy: request.deploy,
    instance: request.instance,
    slot: request.slot,
    machine: request.machine,
  };
}

export class RpcMachineAgent implements MachineAgent {
  readonly #client: RpcClient<typeof agentCommands>;

  constructor(nc: NatsConnection, installation: string, authority: string) {
    this.#client = new RpcClient({ nc, scope: { installation, authority }, commands: agentCommands });
  }

  async capacity(machine: string): Promise<MachineCapacity> {
    return capacityFromProbe(await this.#client.call(machine, 'capacity', null, { timeoutMs: 2000 }));
  }

  async start(request: StartRequest): Promise<StartedInstance> {
    const started = await this.#client.call(request.machine, DEPLOY_RPC.start, startBodyOf(request), {
      timeoutMs: 60_000,
    });
    return { container_id: started.container_id, ip: started.ip, name: started.name };
  }

  async waitReady(
    machine: string,
    instance: StartedInstance,
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#client.call(
      machine,
      DEPLOY_RPC.ready,
      { machine, instance, readiness },
      { timeoutMs: readinessBudgetMs(readiness), signal },
    );
  }

  async stop(request: StopRequest): Promise<void> {
    await this.#client.call(request.machine, DEPLOY_RPC.stop, request, {
      timeoutMs: request.stop_grace_ms + 30_000,
    });
  }
}
