/**
 * The machine commands every ployzd answers on
 * `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>` (@ployz/protocol's RpcServer), as a typed
 * registry: `ping`, `status` (the local API's status view) and `capacity` (placement probes).
 * Plugins add theirs (the deploy engine: deploy_start / deploy_ready / deploy_stop) through
 * `DaemonContext.registerCommands`.
 */
import { defineCommands, StatusView } from '@ployz/protocol';
import { z } from 'zod';

export const CapacityView = z.looseObject({
  cpus: z.number(),
  load1: z.number(),
  memory_total_bytes: z.number(),
  memory_available_bytes: z.number(),
  disk_path: z.string(),
  disk_total_bytes: z.number(),
  disk_free_bytes: z.number(),
});

export const machineCommands = defineCommands({
  ping: {
    request: z.null(),
    response: z.looseObject({ pong: z.literal(true), machine: z.string().optional(), at: z.string() }),
    description: 'liveness of this machine’s daemon',
  },
  status: { request: z.null(), response: StatusView, description: 'the daemon status (as ployzctl status)' },
  capacity: {
    request: z.null(),
    response: CapacityView,
    description: 'CPU, memory and disk free, for placement',
  },
});
export type MachineCommands = typeof machineCommands;
