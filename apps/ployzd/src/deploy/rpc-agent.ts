/**
 * The MachineAgent port over machine-command RPC (@ployz/protocol's RpcClient on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`), the deploy commands' typed registry, and
 * the handlers each daemon registers for them. No responder or a timeout is a PloyzError to the
 * caller (RPC_NO_RESPONDERS / RPC_TIMEOUT); nothing is retried here.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { type CommandHandlers, defineCommands, RpcClient } from '@ployz/protocol';
import { z } from 'zod';
import { machineCommands } from '../machine-commands.ts';
import { capacityFromProbe, type DockerWorkloads } from './docker-workloads.ts';
import type { MachineCapacity } from './placement.ts';
import type { MachineAgent, StartedInstance, StartRequest, StopRequest } from './ports.ts';
import type { ReadinessSpec } from './spec.ts';

export const DEPLOY_RPC = { start: 'deploy_start', ready: 'deploy_ready', stop: 'deploy_stop' } as const;

const StartBody = z.object({
  namespace: z.string(),
  service: z.record(z.string(), z.unknown()),
  revision: z.string(),
  deploy: z.string(),
  instance: z.string(),
  slot: z.number().int().nonnegative(),
  machine: z.string(),
});
const ReadyBody = z.object({
  instance: z.object({ container_id: z.string(), ip: z.string().nullable(), name: z.string() }),
  readiness: z.record(z.string(), z.unknown()).nullable(),
});
const StopBody = z.object({
  namespace: z.string(),
  service: z.string(),
  instance: z.string(),
  machine: z.string(),
  stop_grace_ms: z.number().nonnegative(),
});
const Started = z.looseObject({ container_id: z.string(), ip: z.string().nullable() });

/** The participant side of a deploy, one command per step a machine takes part in. */
export const deployCommands = defineCommands({
  [DEPLOY_RPC.start]: {
    request: StartBody,
    response: Started,
    description: 'create and start one instance container',
  },
  [DEPLOY_RPC.ready]: {
    request: ReadyBody,
    response: z.object({ ready: z.literal(true) }),
    description: 'wait until an instance passes its readiness check',
  },
  [DEPLOY_RPC.stop]: {
    request: StopBody,
    response: z.object({ stopped: z.literal(true) }),
    description: 'stop and remove one instance container',
  },
});

const agentCommands = { ...machineCommands, ...deployCommands };

function readinessBudgetMs(r: ReadinessSpec | null): number {
  if (r === null) return 10_000;
  return r.start_period_ms + (r.retries + 2) * (r.interval_ms + r.timeout_ms) + 10_000;
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
    const started = await this.#client.call(request.machine, DEPLOY_RPC.start, request, {
      timeoutMs: 60_000,
    });
    return { container_id: started.container_id, ip: started.ip };
  }

  async waitReady(
    machine: string,
    instance: StartedInstance & { name: string },
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#client.call(
      machine,
      DEPLOY_RPC.ready,
      { instance, readiness: readiness as Record<string, unknown> | null },
      { timeoutMs: readinessBudgetMs(readiness), signal },
    );
  }

  async stop(request: StopRequest): Promise<void> {
    await this.#client.call(request.machine, DEPLOY_RPC.stop, request, {
      timeoutMs: request.stop_grace_ms + 30_000,
    });
  }
}

// ------------------------------------------------------------------ handlers (participant side)

export function deployRpcHandlers(workloads: () => DockerWorkloads): CommandHandlers<typeof deployCommands> {
  return {
    [DEPLOY_RPC.start]: (body) => workloads().start(body as unknown as StartRequest),
    [DEPLOY_RPC.ready]: async (body) => {
      const readiness = body.readiness as ReadinessSpec | null;
      await workloads().waitReady(
        body.instance,
        readiness,
        AbortSignal.timeout(readinessBudgetMs(readiness)),
      );
      return { ready: true };
    },
    [DEPLOY_RPC.stop]: async (body) => {
      await workloads().stop(body);
      return { stopped: true };
    },
  };
}
