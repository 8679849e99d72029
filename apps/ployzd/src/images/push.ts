/**
 * `ployzctl image push <image> [--machine m]`: this machine's image to one machine, or to every
 * eligible machine (active, region neither draining nor disabled) that lacks it by id. Machines
 * go two at a time; each outcome is reported (present, sent, failed, unavailable), and a failure
 * is the route's error once every machine has had its turn.
 */
import type { ImageEvent, ImagePushOutcome, ImagePushRequest, ImagePushResult } from '@ployz/protocol';
import { type MachineRecord, PloyzError } from '@ployz/types';
import { isEligibleRegion } from '../deploy/model/placement.ts';
import { runBounded } from '../workloads/start-queue.ts';
import type { ImageSender } from './sender.ts';

export interface PushDeps {
  self: string;
  machines: () => Promise<MachineRecord[]>;
  sender: ImageSender;
  emit: (event: ImageEvent) => void;
  /** Machines not begun yet are not begun once it is aborted. */
  signal?: AbortSignal;
}

function silent(error: unknown): boolean {
  return error instanceof PloyzError && (error.code === 'RPC_TIMEOUT' || error.code === 'RPC_NO_RESPONDERS');
}

/** The machines a push goes to: the one named (it must exist and not be removed), or every eligible other one. */
export function pushTargets(
  machines: readonly MachineRecord[],
  self: string,
  named: string | null,
): string[] {
  if (named !== null) {
    const record = machines.find((m) => m.id === named);
    if (record === undefined) {
      throw new PloyzError('NOT_FOUND', `no machine ${named}; see ployzctl machine ls`, {
        details: { machine: named, known: machines.map((m) => m.id).sort() },
      });
    }
    if (record.lifecycle === 'removed') {
      throw new PloyzError('INVALID_ARGUMENT', `machine ${named} was removed; it gets no images`, {
        details: { machine: named },
      });
    }
    return [named];
  }
  return machines
    .filter((m) => m.id !== self && isEligibleRegion(m, []))
    .map((m) => m.id)
    .sort();
}

export async function pushImage(deps: PushDeps, request: ImagePushRequest): Promise<ImagePushResult> {
  const { self, sender, emit } = deps;
  const local = await sender.local(request.image);
  if (local === null) {
    throw new PloyzError(
      'IMAGE_MISSING',
      `image ${request.image} is not present on ${self} (the machine whose ployzd was asked); build or load it here first`,
      { details: { image: request.image, machine: self } },
    );
  }
  const targets = pushTargets(await deps.machines(), self, request.machine);
  const outcomes = new Map<string, ImagePushOutcome>();
  const errors = new Map<string, unknown>();
  const base = { type: 'image' as const, image: request.image, image_id: local.id, total_bytes: local.size };
  const pushOne = async (machine: string): Promise<void> => {
    const started = performance.now();
    const outcome = (action: ImagePushOutcome['action'], bytes: number, detail: string) =>
      outcomes.set(machine, {
        machine,
        action,
        bytes,
        seconds: (performance.now() - started) / 1000,
        detail,
      });
    if (machine === self) {
      emit({ ...base, machine, action: 'present', bytes: 0, detail: 'the machine it is sent from' });
      outcome('present', 0, 'the machine it is sent from');
      return;
    }
    try {
      const has = await sender.has(machine, request.image, local.id);
      if (has.present) {
        const detail = `already holds ${local.id.slice(7, 19)}; nothing sent`;
        emit({ ...base, machine, action: 'present', bytes: 0, detail });
        outcome('present', 0, detail);
        return;
      }
    } catch (error) {
      const detail = (error as Error).message;
      emit({ ...base, machine, action: 'unavailable', bytes: 0, detail });
      outcome('unavailable', 0, detail);
      if (request.machine !== null || !silent(error)) errors.set(machine, error);
      return;
    }
    try {
      const sent = await sender.send(machine, request.image, local, emit);
      outcome(sent.present ? 'present' : 'sent', sent.bytes, sent.present ? 'already there' : 'loaded');
    } catch (error) {
      outcome('failed', 0, (error as Error).message);
      errors.set(machine, error);
    }
  };
  await runBounded(
    targets.map((machine) => ({ machine: 'push', run: () => pushOne(machine) })),
    () => 2,
    deps.signal ?? new AbortController().signal,
  );
  const result: ImagePushResult = {
    image: request.image,
    image_id: local.id,
    from: self,
    machines: targets.map((m) => outcomes.get(m)).filter((o): o is ImagePushOutcome => o !== undefined),
  };
  if (errors.size === 1 && request.machine !== null) throw [...errors.values()][0];
  if (errors.size > 0) {
    const names = [...errors.keys()].sort();
    throw new PloyzError(
      'IMAGE_TRANSFER_FAILED',
      `${request.image} did not reach ${names.join(', ')}: ${names.map((n) => `${n}: ${(errors.get(n) as Error).message}`).join('; ')}`,
      { details: { image: request.image, failed: names, result } },
    );
  }
  return result;
}
