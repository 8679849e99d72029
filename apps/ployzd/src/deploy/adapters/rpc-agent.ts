/**
 * The MachineAgent port over machine-command RPC (@ployz/protocol's RpcClient on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`), the caller side of @ployz/protocol's
 * `deployCommands`. The participant side is rpc-handlers.ts. No responder or a timeout is a
 * PloyzError to the caller (RPC_NO_RESPONDERS / RPC_TIMEOUT); nothing is retried here.
 *
 * A start or a readiness wait may last a minute; a participant lost meanwhile (cut off, powered
 * off) would hold the deploy that long. So while one runs, the participant is pinged: `misses`
 * pings in a row unanswered end the call with MACHINE_UNREACHABLE naming the machine — the deploy
 * fails there, before its commit.
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

/** How a long call watches its participant. */
export interface LivenessWatch {
  /** Between two pings (each also times out after this). */
  intervalMs: number;
  /** Unanswered pings in a row that mean the machine is lost. */
  misses: number;
}

const DEFAULT_WATCH: LivenessWatch = { intervalMs: 2000, misses: 3 };

export class RpcMachineAgent implements MachineAgent {
  readonly #client: RpcClient<typeof agentCommands>;
  readonly #watch: LivenessWatch;

  constructor(nc: NatsConnection, installation: string, authority: string, watch = DEFAULT_WATCH) {
    this.#client = new RpcClient({ nc, scope: { installation, authority }, commands: agentCommands });
    this.#watch = watch;
  }

  /** Runs `call` while pinging `machine`; `misses` pings in a row unanswered end it (MACHINE_UNREACHABLE). */
  async #watched<T>(
    machine: string,
    what: string,
    outer: AbortSignal | undefined,
    call: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const lost = new AbortController();
    const { intervalMs, misses } = this.#watch;
    let missed = 0;
    let pinging = false;
    const timer = setInterval(() => {
      if (pinging) return;
      pinging = true;
      this.#client
        .call(machine, 'ping', null, { timeoutMs: intervalMs })
        .then(
          () => {
            missed = 0;
          },
          (err: unknown) => {
            // A remote error is an answer; only silence counts.
            const code = err instanceof PloyzError ? err.code : '';
            if (code !== 'RPC_TIMEOUT' && code !== 'RPC_NO_RESPONDERS') return;
            missed += 1;
            if (missed < misses) return;
            lost.abort(
              new PloyzError(
                'MACHINE_UNREACHABLE',
                `machine ${machine} stopped answering during ${what} (${misses} pings in a row unanswered); ` +
                  'the deploy stops before its commit — check it with `ployzctl machine ls`, then deploy again',
                { details: { machine, during: what } },
              ),
            );
          },
        )
        .finally(() => {
          pinging = false;
        });
    }, intervalMs);
    timer.unref();
    const signal = outer ? AbortSignal.any([outer, lost.signal]) : lost.signal;
    try {
      return await call(signal);
    } catch (err) {
      if (lost.signal.aborted) throw lost.signal.reason;
      throw err;
    } finally {
      clearInterval(timer);
    }
  }

  async capacity(machine: string): Promise<MachineCapacity> {
    return capacityFromProbe(await this.#client.call(machine, 'capacity', null, { timeoutMs: 2000 }));
  }

  async start(request: StartRequest): Promise<StartedInstance> {
    const body = startBodyOf(request);
    const started = await this.#watched(
      request.machine,
      `the start of ${request.instance}`,
      undefined,
      (signal) => this.#client.call(request.machine, DEPLOY_RPC.start, body, { timeoutMs: 60_000, signal }),
    );
    return { container_id: started.container_id, ip: started.ip, name: started.name };
  }

  async waitReady(
    machine: string,
    instance: StartedInstance,
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#watched(machine, `the readiness wait of ${instance.name}`, signal, (watched) =>
      this.#client.call(
        machine,
        DEPLOY_RPC.ready,
        { machine, instance, readiness },
        { timeoutMs: readinessBudgetMs(readiness), signal: watched },
      ),
    );
  }

  async stop(request: StopRequest): Promise<void> {
    await this.#client.call(request.machine, DEPLOY_RPC.stop, request, {
      timeoutMs: request.stop_grace_ms + 30_000,
    });
  }
}
