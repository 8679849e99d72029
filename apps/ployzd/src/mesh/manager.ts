/**
 * The mesh loop of one machine: applies the records it knew last (`known`, before the store
 * answers: a member reaches the store only through wg0), then takes the machine records from a
 * routing snapshot, applies the
 * derived peers to wg0 and the peer routes to the host, then re-applies on every
 * `machine_upserted` / `machine_removed` event, on `kick()` (the data plane recreated
 * ployz-networking) and every `resyncMs`. Each pass is adopt-first (only the difference is applied,
 * a converged mesh is left alone), so a restarted daemon changes nothing and the tunnels carry on.
 * wg0 carrying another key than this machine's record is reported and left alone. A failed pass
 * (networking container away, feed broken) is reported and retried from a fresh snapshot.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { MachineRecord, RoutingFeed } from '@ployz/types';
import type Docker from 'dockerode';
import { type CommandRunner, dockerExecRunner, hostRunner } from './command.ts';
import { type DesiredPeer, desiredPeers } from './peers.ts';
import { type RouteChanges, syncHostRoutes } from './routes.ts';
import { type MeshApplyResult, WireguardInterface } from './wireguard.ts';

/** What the manager drives: wg0 (WireguardInterface) and the host's peer routes (syncHostRoutes). */
export interface MeshTargets {
  readPublicKey(): Promise<string>;
  apply(desired: readonly DesiredPeer[]): Promise<MeshApplyResult>;
  hostRoutes(subnets: readonly string[]): Promise<RouteChanges>;
}

export type MeshEvent =
  | { kind: 'applied'; peers: string[]; wireguard: MeshApplyResult; host: RouteChanges }
  | { kind: 'key_mismatch'; expected: string; actual: string }
  | { kind: 'error'; error: unknown };

export interface MeshManagerOptions {
  self: Pick<MachineRecord, 'id' | 'public_key'>;
  /** The store's routing feed; null while the store is not reachable yet (asked again after retryMs). */
  feed: () => RoutingFeed | null;
  /** The records applied last time (fleet/known-peers.ts): applied at once, before the feed answers. */
  known?: readonly MachineRecord[];
  /** After each applied pass: the records it applied (to keep them as the next start's `known`). */
  onApplied?(machines: readonly MachineRecord[]): Promise<void>;
  targets: MeshTargets;
  onEvent(event: MeshEvent): void;
  /** Wait before a new snapshot after a failure. */
  retryMs?: number;
  /** A full re-apply this often (0: never), for whatever changed wg0 behind the daemon's back. */
  resyncMs?: number;
}

export class MeshManager {
  readonly #options: MeshManagerOptions;
  #machines: Map<string, MachineRecord> | null = null;
  #pass: Promise<unknown> = Promise.resolve();

  constructor(options: MeshManagerOptions) {
    this.#options = options;
  }

  /** One pass over `machines` (serialised with every other pass); what the loop runs. */
  sync(machines: readonly MachineRecord[]): Promise<MeshEvent> {
    const run = this.#pass.then(() => this.#apply(machines));
    this.#pass = run.catch(() => {});
    return run;
  }

  /** Re-applies the last known records now (no-op before the first snapshot); failures are reported. */
  kick(): void {
    const machines = this.#machines;
    if (machines === null) return;
    this.sync([...machines.values()]).catch((error: unknown) =>
      this.#options.onEvent({ kind: 'error', error }),
    );
  }

  /** Follows the feed until `signal` aborts; never throws. */
  async run(signal: AbortSignal): Promise<void> {
    const { retryMs = 2000, resyncMs = 30_000, known = [] } = this.#options;
    const resync = resyncMs > 0 ? setInterval(() => this.kick(), resyncMs) : null;
    if (known.length > 0) {
      this.#machines = new Map(known.map((m) => [m.id, m]));
      await this.sync(known).catch((error: unknown) => this.#options.onEvent({ kind: 'error', error }));
    }
    try {
      while (!signal.aborted) {
        try {
          const feed = this.#options.feed();
          if (feed === null) {
            await delay(retryMs, undefined, { signal }).catch(() => {});
            continue;
          }
          const snapshot = await feed.snapshot();
          const machines = new Map(snapshot.machines.map((m) => [m.id, m]));
          this.#machines = machines;
          await this.sync([...machines.values()]);
          for await (const { event } of feed.follow(snapshot.seq, signal)) {
            if (event.type === 'machine_upserted') machines.set(event.machine.id, event.machine);
            else if (event.type === 'machine_removed') machines.delete(event.machine_id);
            else continue;
            await this.sync([...machines.values()]);
          }
        } catch (error) {
          if (signal.aborted) return;
          this.#options.onEvent({ kind: 'error', error });
          await delay(retryMs, undefined, { signal }).catch(() => {}); // an abort ends the wait
        }
      }
    } finally {
      if (resync !== null) clearInterval(resync);
    }
  }

  async #apply(machines: readonly MachineRecord[]): Promise<MeshEvent> {
    const { self, targets, onEvent } = this.#options;
    const actual = await targets.readPublicKey();
    if (actual !== self.public_key) {
      const event: MeshEvent = { kind: 'key_mismatch', expected: self.public_key, actual };
      onEvent(event);
      return event;
    }
    const desired = desiredPeers(self, machines);
    const wireguard = await targets.apply(desired);
    const host = await targets.hostRoutes(desired.map((p) => p.subnet));
    const event: MeshEvent = { kind: 'applied', peers: desired.map((p) => p.machineId), wireguard, host };
    await this.#options.onApplied?.(machines);
    onEvent(event);
    return event;
  }
}

/**
 * The real targets of one machine: wg0 in its networking container (over `docker exec`) and the
 * peer routes via that container's bridge address in `hostRun`'s netns (the daemon's own).
 */
export function networkingTargets(
  docker: Docker,
  container: string,
  networkingAddress: string,
  hostRun: CommandRunner = hostRunner,
): MeshTargets {
  const wg = new WireguardInterface(dockerExecRunner(docker, container), { where: container });
  return {
    readPublicKey: async () => (await wg.read()).publicKey,
    apply: (desired) => wg.apply(desired),
    hostRoutes: (subnets) => syncHostRoutes(hostRun, networkingAddress, subnets),
  };
}
