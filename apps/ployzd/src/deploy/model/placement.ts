/**
 * Placement: which machine each slot of a service runs on. Pure.
 *
 * - A machine is eligible when it is `active`, its region role is neither `draining` nor
 *   `disabled`, it matches the service's region constraint (if any), it answered the capacity
 *   probe, and (for a new placement) has the memory the service asks for.
 * - Replicated N: slots 0..N-1. A slot stays on its machine while that machine is eligible;
 *   otherwise it goes to the eligible machine with the fewest slots of this service (ties: most
 *   free memory, then machine id), so replicas spread before they stack.
 * - Global: one slot per eligible machine; a machine keeps its slot number, new machines take the
 *   lowest free numbers.
 */
import { type MachineRecord, PloyzError, type SlotAssignment } from '@ployz/types';
import type { DeployService } from './spec.ts';

export interface MachineCapacity {
  cpus: number;
  memory_free_mb: number;
  disk_free_mb: number;
}

export interface PlacementInput {
  service: Pick<DeployService, 'name' | 'placement' | 'resources'>;
  machines: readonly MachineRecord[];
  /** Probe results: machine id → capacity. A machine absent here is unavailable. */
  capacity: ReadonlyMap<string, MachineCapacity>;
  /** The slots of the committed release, if any. */
  previous: readonly SlotAssignment[];
}

export interface PlacedSlot {
  slot: number;
  machine: string;
}

export function isEligibleRegion(machine: MachineRecord, regions: readonly string[]): boolean {
  if (machine.lifecycle !== 'active') return false;
  if (machine.region_role === 'draining' || machine.region_role === 'disabled') return false;
  return regions.length === 0 || regions.includes(machine.region);
}

/** Machines that may hold a slot of this service right now (already running or new). */
export function eligibleMachines(input: PlacementInput): MachineRecord[] {
  const regions = input.service.placement.regions;
  return input.machines
    .filter((m) => isEligibleRegion(m, regions) && input.capacity.has(m.id))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function fitsNew(input: PlacementInput, machine: string): boolean {
  const need = input.service.resources.memory_mb;
  if (need === undefined) return true;
  const cap = input.capacity.get(machine);
  return cap !== undefined && cap.memory_free_mb >= need;
}

export function placeService(input: PlacementInput): PlacedSlot[] {
  const eligible = eligibleMachines(input);
  const eligibleIds = new Set(eligible.map((m) => m.id));
  const { placement } = input.service;

  if (placement.mode === 'global') {
    const targets = eligible.filter(
      (m) => fitsNew(input, m.id) || input.previous.some((p) => p.machine === m.id),
    );
    const kept = new Map<string, number>();
    for (const p of [...input.previous].sort((a, b) => a.slot - b.slot)) {
      if (eligibleIds.has(p.machine) && !kept.has(p.machine)) kept.set(p.machine, p.slot);
    }
    const used = new Set(kept.values());
    let next = 0;
    const out: PlacedSlot[] = [];
    for (const m of targets) {
      let slot = kept.get(m.id);
      if (slot === undefined) {
        while (used.has(next)) next++;
        slot = next;
        used.add(slot);
      }
      out.push({ slot, machine: m.id });
    }
    if (out.length === 0) throw noCapacity(input, eligible.length);
    return out.sort((a, b) => a.slot - b.slot);
  }

  const out: PlacedSlot[] = [];
  const load = new Map<string, number>();
  const unplaced: number[] = [];
  for (let slot = 0; slot < placement.replicas; slot++) {
    const prev = input.previous.find((p) => p.slot === slot);
    if (prev !== undefined && eligibleIds.has(prev.machine)) {
      out.push({ slot, machine: prev.machine });
      load.set(prev.machine, (load.get(prev.machine) ?? 0) + 1);
    } else {
      unplaced.push(slot);
    }
  }
  const candidates = eligible.filter((m) => fitsNew(input, m.id));
  for (const slot of unplaced) {
    const best = [...candidates].sort((a, b) => {
      const la = load.get(a.id) ?? 0;
      const lb = load.get(b.id) ?? 0;
      if (la !== lb) return la - lb;
      const fa = input.capacity.get(a.id)?.memory_free_mb ?? 0;
      const fb = input.capacity.get(b.id)?.memory_free_mb ?? 0;
      if (fa !== fb) return fb - fa;
      return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
    })[0];
    if (best === undefined) throw noCapacity(input, eligible.length);
    out.push({ slot, machine: best.id });
    load.set(best.id, (load.get(best.id) ?? 0) + 1);
  }
  return out.sort((a, b) => a.slot - b.slot);
}

function noCapacity(input: PlacementInput, eligible: number): PloyzError {
  const regions = input.service.placement.regions;
  return new PloyzError(
    'DEPLOY_NO_CAPACITY',
    `service '${input.service.name}' has no machine to run on: ${input.machines.length} known, ${eligible} eligible` +
      `${regions.length > 0 ? ` in regions ${regions.join(', ')}` : ''}. ` +
      'Check `ployzctl machine ls` for active machines outside draining/disabled regions that answer probes.',
    { details: { service: input.service.name, machines: input.machines.length, eligible, regions } },
  );
}
