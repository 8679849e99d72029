/**
 * The machine commands every ployzd answers on `…rpc.node.<machine>.<command>`: `ping`,
 * `status` (the local API's status view) and `capacity` (placement probes). None takes a body
 * (`null` only); the deploy engine adds its own (deploy-commands.ts).
 */
import { z } from 'zod';
import { StatusView } from './api-schemas.ts';
import { defineCommands } from './rpc.ts';

const Bytes = z.number().nonnegative();

export const CapacityView = z.strictObject({
  cpus: z.number().positive(),
  load1: z.number().nonnegative(),
  memory_total_bytes: Bytes,
  memory_available_bytes: Bytes,
  disk_path: z.string(),
  disk_total_bytes: Bytes,
  disk_free_bytes: Bytes,
});
export type CapacityView = z.infer<typeof CapacityView>;

export const PingView = z.strictObject({
  pong: z.literal(true),
  machine: z.string().optional(),
  at: z.iso.datetime(),
});
export type PingView = z.infer<typeof PingView>;

export const machineCommands = defineCommands({
  ping: { request: z.null(), response: PingView, description: 'liveness of this machine’s daemon' },
  status: { request: z.null(), response: StatusView, description: 'the daemon status (as ployzctl status)' },
  capacity: {
    request: z.null(),
    response: CapacityView,
    description: 'CPU, memory and disk free, for placement',
  },
});
export type MachineCommands = typeof machineCommands;
