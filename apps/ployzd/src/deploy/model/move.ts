/**
 * Pure decisions of a volume move (issue 23, ADR 0021): whether a volume can move to a machine and
 * what the move does (the plan's move line: size, the services whose writers stop for the cutover),
 * the movement evidence its commit carries, and the rollback it forbids (seed 004: no rollback past a
 * volume move — the data from before it stays on the source, renamed, and no commit names it).
 */
import {
  type DeployCommit,
  type MachineRecord,
  PloyzError,
  type VolumeMovement,
  type VolumeRecord,
} from '@ployz/types';

export interface MoveRequest {
  namespace: string;
  /** The record's name: `<volume>` or `<volume>-<slot>`. */
  volume: string;
  to: string;
}

export interface MovePlan {
  namespace: string;
  volume: string;
  slot: number | null;
  from: string;
  to: string;
  driver: 'zfs' | 'btrfs';
  /** The bytes the volume's newest snapshot references (the bulk pass's size, about). */
  bytes: number;
  /** The services mounting the volume: their writers stop for the increment, their candidates start on `to`. */
  services: string[];
  /** What the cutover is, in the operator's words. */
  cutover: string;
}

/**
 * The move of one volume record to `to`, or why it cannot move: the volume must exist and be
 * committed (no pending deploy on it), `to` must be another active machine, and both machines must
 * keep volumes on the same driver with a send stream (zfs or btrfs).
 */
export function planMove(
  request: MoveRequest,
  record: VolumeRecord | null,
  machines: readonly MachineRecord[],
  services: readonly string[],
): MovePlan {
  const label = `${request.namespace}/${request.volume}`;
  if (record === null) {
    throw new PloyzError('NOT_FOUND', `no volume ${label}; see ployzctl volume ls -n ${request.namespace}`, {
      details: { namespace: request.namespace, volume: request.volume },
    });
  }
  const invalid = (message: string, details: Record<string, unknown> = {}) =>
    new PloyzError('INVALID_ARGUMENT', message, {
      details: { volume: label, from: record.machine, to: request.to, ...details },
    });
  if (record.pending !== null) {
    throw invalid(
      `volume ${label} has deploy ${record.pending.deploy_id} pending on it; wait for it to finish (ployzctl deploy show ${record.pending.deploy_id})`,
    );
  }
  if (request.to === record.machine) {
    throw invalid(`volume ${label} is on ${record.machine} already; name another machine with --to`);
  }
  const target = machines.find((m) => m.id === request.to);
  if (target === undefined || target.lifecycle !== 'active') {
    throw invalid(
      target === undefined
        ? `no machine ${request.to} in this installation; see ployzctl machine ls`
        : `machine ${request.to} is ${target.lifecycle}; a volume moves only to an active machine`,
    );
  }
  const targetDriver = target.storage?.driver ?? 'dir';
  if (record.driver === 'dir' || targetDriver === 'dir') {
    throw new PloyzError(
      'STORAGE_UNSUPPORTED',
      `volume ${label} cannot move from ${record.machine} (${record.driver}) to ${request.to} (${targetDriver}): plain-directory volumes have no send stream; both machines need zfs or btrfs storage`,
      { details: { volume: label, from_driver: record.driver, to_driver: targetDriver } },
    );
  }
  if (record.driver !== targetDriver) {
    throw new PloyzError(
      'STORAGE_UNSUPPORTED',
      `volume ${label} is on ${record.driver} and ${request.to} keeps ${targetDriver}: a move streams ${record.driver} send into ${record.driver} receive, so both machines need the same driver`,
      { details: { volume: label, from_driver: record.driver, to_driver: targetDriver } },
    );
  }
  const newest = record.snapshots[record.snapshots.length - 1];
  const stopping = [...services].sort();
  return {
    namespace: record.namespace,
    volume: record.name,
    slot: record.slot,
    from: record.machine,
    to: request.to,
    driver: record.driver,
    bytes: newest?.bytes ?? 0,
    services: stopping,
    cutover:
      stopping.length === 0
        ? 'no service mounts the volume: nothing stops'
        : `${stopping.join(', ')} stop on ${record.machine} only for the increment (second pass) and its verification, then start on ${request.to}`,
  };
}

/** The evidence the move's commit carries, from the verified last pass (and the bytes of both). */
export function movementOf(
  plan: MovePlan,
  last: { snapshot: string; id: string },
  passBytes: readonly number[],
): VolumeMovement {
  return {
    volume: plan.volume,
    slot: plan.slot,
    from_machine: plan.from,
    to_machine: plan.to,
    driver: plan.driver,
    snapshot: last.snapshot,
    guid: last.id,
    bytes: passBytes.reduce((a, b) => a + b, 0),
    verified: true,
  };
}

/**
 * ROLLBACK_PAST_MOVE when a commit of the namespace appended after `rollbackOf`'s last commit
 * moved a volume: the error names the oldest such move, its volume and machines. `commits` are in
 * stream order (the order they were committed), which two deploys in one millisecond cannot tie.
 */
export function assertNoMoveSince(commits: readonly DeployCommit[], rollbackOf: string): void {
  const target = commits.findLastIndex((c) => c.deploy_id === rollbackOf);
  if (target === -1) return;
  const move = commits.slice(target + 1).find((c) => c.volume_movements.length > 0);
  if (move === undefined) return;
  const moved = move.volume_movements;
  const what = moved.map((m) => `${m.volume} from ${m.from_machine ?? '?'} to ${m.to_machine}`).join(', ');
  throw new PloyzError(
    'ROLLBACK_PAST_MOVE',
    `deploy ${move.deploy_id} moved volume ${what} after ${rollbackOf}; a rollback cannot cross a volume move (the data from before it is not committed anywhere). Roll back to ${move.deploy_id} or later, or move the volume back first`,
    {
      details: {
        rollback_of: rollbackOf,
        move_deploy: move.deploy_id,
        volumes: moved.map((m) => ({ volume: m.volume, from: m.from_machine, to: m.to_machine })),
      },
    },
  );
}
