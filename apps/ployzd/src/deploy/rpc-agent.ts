/**
 * The MachineAgent port over machine-command RPC (request/reply on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`), and the handlers each daemon registers
 * for the deploy commands. No responder or a timeout is an RpcFailure to the caller
 * (RPC_NO_RESPONDERS / RPC_TIMEOUT); nothing is retried here.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { type ErrorBody, PloyzError } from '@ployz/types';
import { z } from 'zod';
import { nodeSubjectPrefix } from '../agent-rpc.ts';
import { capacityFromProbe, type DockerWorkloads } from './docker-workloads.ts';
import type { MachineCapacity } from './placement.ts';
import type { MachineAgent, StartedInstance, StartRequest, StopRequest } from './ports.ts';
import type { ReadinessSpec } from './spec.ts';

export const DEPLOY_RPC = { start: 'deploy_start', ready: 'deploy_ready', stop: 'deploy_stop' } as const;

const Reply = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({
    ok: z.literal(false),
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  }),
]);

const CapacityAnswer = z.object({
  cpus: z.number(),
  memory_available_bytes: z.number(),
  disk_free_bytes: z.number(),
});
const Started = z.object({ container_id: z.string(), ip: z.string().nullable() });

function readinessBudgetMs(r: ReadinessSpec | null): number {
  if (r === null) return 10_000;
  return r.start_period_ms + (r.retries + 2) * (r.interval_ms + r.timeout_ms) + 10_000;
}

export class RpcMachineAgent implements MachineAgent {
  readonly #nc: NatsConnection;
  readonly #installation: string;
  readonly #authority: string;

  constructor(nc: NatsConnection, installation: string, authority: string) {
    this.#nc = nc;
    this.#installation = installation;
    this.#authority = authority;
  }

  async #call(
    machine: string,
    command: string,
    body: unknown,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<unknown> {
    const subject = `${nodeSubjectPrefix(this.#installation, this.#authority, machine)}.${command}`;
    const request = this.#nc.request(subject, JSON.stringify(body), { timeout: timeoutMs });
    let msg: Awaited<typeof request>;
    try {
      msg = signal
        ? await Promise.race([
            request,
            new Promise<never>((_, reject) => {
              if (signal.aborted) reject(signal.reason);
              signal.addEventListener('abort', () => reject(signal.reason), { once: true });
            }),
          ])
        : await request;
    } catch (err) {
      if (signal?.aborted) throw err;
      const text = `${(err as { name?: string }).name ?? ''} ${(err as Error).message ?? ''} ${String((err as { code?: unknown }).code ?? '')}`;
      if (/no ?responders|503/i.test(text)) {
        throw new PloyzError(
          'RPC_NO_RESPONDERS',
          `machine ${machine} does not answer ${command} (no responders): it is down or not running ployzd`,
          {
            details: { machine, command },
            cause: err,
          },
        );
      }
      if (/timeout/i.test(text)) {
        throw new PloyzError(
          'RPC_TIMEOUT',
          `machine ${machine} did not answer ${command} within ${timeoutMs} ms`,
          { details: { machine, command }, cause: err },
        );
      }
      throw new PloyzError('RPC_REMOTE_ERROR', `${command} on ${machine} failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const reply = Reply.safeParse(JSON.parse(new TextDecoder().decode(msg.data)));
    if (!reply.success)
      throw new PloyzError(
        'RPC_REMOTE_ERROR',
        `machine ${machine} answered ${command} with something that is not a reply`,
      );
    if (!reply.data.ok) throw PloyzError.fromBody(reply.data.error as ErrorBody);
    return reply.data.result;
  }

  async capacity(machine: string): Promise<MachineCapacity> {
    return capacityFromProbe(CapacityAnswer.parse(await this.#call(machine, 'capacity', null, 2000)));
  }

  async start(request: StartRequest): Promise<StartedInstance> {
    return Started.parse(await this.#call(request.machine, DEPLOY_RPC.start, request, 60_000));
  }

  async waitReady(
    machine: string,
    instance: StartedInstance & { name: string },
    readiness: ReadinessSpec | null,
    signal: AbortSignal,
  ): Promise<void> {
    await this.#call(
      machine,
      DEPLOY_RPC.ready,
      { instance, readiness },
      readinessBudgetMs(readiness),
      signal,
    );
  }

  async stop(request: StopRequest): Promise<void> {
    await this.#call(request.machine, DEPLOY_RPC.stop, request, request.stop_grace_ms + 30_000);
  }
}

// ------------------------------------------------------------------ handlers (participant side)

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

function parse<T>(schema: z.ZodType<T>, body: unknown, command: string): T {
  const r = schema.safeParse(body);
  if (!r.success)
    throw new PloyzError('RPC_BAD_REQUEST', `${command}: ${r.error.issues[0]?.message ?? 'invalid request'}`);
  return r.data;
}

export function deployRpcHandlers(
  workloads: () => DockerWorkloads,
): Record<string, (body: unknown) => Promise<unknown>> {
  return {
    [DEPLOY_RPC.start]: async (body) =>
      workloads().start(parse(StartBody, body, DEPLOY_RPC.start) as unknown as StartRequest),
    [DEPLOY_RPC.ready]: async (body) => {
      const b = parse(ReadyBody, body, DEPLOY_RPC.ready);
      await workloads().waitReady(
        b.instance,
        b.readiness as ReadinessSpec | null,
        AbortSignal.timeout(readinessBudgetMs(b.readiness as ReadinessSpec | null)),
      );
      return { ready: true };
    },
    [DEPLOY_RPC.stop]: async (body) => {
      await workloads().stop(parse(StopBody, body, DEPLOY_RPC.stop));
      return { stopped: true };
    },
  };
}
