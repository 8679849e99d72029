/**
 * Down-marking of the other machines (issue 18 item 7). A machine cut off the mesh answers
 * nothing: connects to its backends hang until the connect timeout, and the keep-alive sockets
 * already open to it go silent until the upstream timeout. Passive marking (a refused connect)
 * cannot see that, so the gateway asks: every interval it opens one TCP connection to one backend
 * of each other machine (rotating over its backends). A connection, or a refusal (a RST came
 * back across the tunnel), means the machine answers; a timeout or an unreachable error is a
 * miss. `misses` misses in a row mark the machine down: the balancer passes over its backends
 * and the proxy drops its pooled connections, so requests waiting on them are retried on another
 * machine when they may be (proxy/retry.ts). Its first answer marks it up again.
 *
 * One probe per machine per interval, never per backend: a fleet of 200 machines costs each
 * gateway 200 connects a second at most. This machine's own backends are never probed (a dead
 * local container is refused at once, the passive path).
 */
import { Socket } from 'node:net';
import type { Backend, RouteTable } from '@ployz/routing';

export type ProbeOutcome = 'answered' | 'silent';

/** One TCP connect to `host:port`: a connection or a refusal is an answer; anything else is silence. */
export type Probe = (host: string, port: number, timeoutMs: number) => Promise<ProbeOutcome>;

export interface MachineHealthOptions {
  /** This machine: never probed. Undefined (a gateway outside ployzd): nothing is probed. */
  self: string | undefined;
  /** Between two rounds of probes. */
  intervalMs: number;
  /** A probe that has not connected by then is a miss. */
  timeoutMs: number;
  /** Misses in a row that mark a machine down (at least 1). */
  misses: number;
  probe?: Probe;
  /** A machine went down (`down`) or came back; `backends` are its backends in the current table. */
  onChange(machine: string, down: boolean, backends: readonly Backend[]): void;
}

interface MachineState {
  backends: Backend[];
  cursor: number;
  misses: number;
  probing: boolean;
}

const ANSWERED_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET']);

/** The real probe: node:net connect, destroyed as soon as it is decided. */
export const tcpProbe: Probe = (host, port, timeoutMs) =>
  new Promise((resolve) => {
    const socket = new Socket();
    const done = (outcome: ProbeOutcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => done('silent'), timeoutMs);
    socket.once('connect', () => done('answered'));
    socket.once('error', (error: Error & { code?: string }) =>
      done(ANSWERED_ERRORS.has(error.code ?? '') ? 'answered' : 'silent'),
    );
    socket.connect({ host, port });
  });

export class MachineHealth {
  readonly #options: MachineHealthOptions;
  readonly #probe: Probe;
  readonly #machines = new Map<string, MachineState>();
  /** Machines marked down now; read by the balancer on every request. */
  readonly down = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(options: MachineHealthOptions) {
    this.#options = { ...options, misses: Math.max(1, options.misses) };
    this.#probe = options.probe ?? tcpProbe;
  }

  /** The machines behind `table` (call after each table swap); a machine no longer in it is forgotten. */
  update(table: RouteTable): void {
    const self = this.#options.self;
    const byMachine = new Map<string, Map<string, Backend>>();
    if (self !== undefined) {
      for (const routes of [table.exact, table.wildcard]) {
        for (const list of routes.values()) {
          for (const route of list) {
            for (const b of route.backends) {
              if (b.machine === self) continue;
              const backends = byMachine.get(b.machine) ?? new Map<string, Backend>();
              backends.set(b.key, b);
              byMachine.set(b.machine, backends);
            }
          }
        }
      }
    }
    for (const [machine, state] of this.#machines) {
      if (byMachine.has(machine)) continue;
      this.#machines.delete(machine);
      if (this.down.delete(machine)) this.#options.onChange(machine, false, state.backends);
    }
    for (const [machine, backends] of byMachine) {
      const list = [...backends.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const state = this.#machines.get(machine);
      if (state === undefined)
        this.#machines.set(machine, { backends: list, cursor: 0, misses: 0, probing: false });
      else state.backends = list;
    }
  }

  /** One round: a probe to each machine whose last probe has finished. Resolves when all have. */
  async round(): Promise<void> {
    const probes: Promise<void>[] = [];
    for (const [machine, state] of this.#machines) {
      if (state.probing || state.backends.length === 0) continue;
      probes.push(this.#check(machine, state));
    }
    await Promise.all(probes);
  }

  async #check(machine: string, state: MachineState): Promise<void> {
    const target = state.backends[state.cursor % state.backends.length] as Backend;
    state.cursor = (state.cursor + 1) % (1 << 30);
    state.probing = true;
    const outcome = await this.#probe(target.host, target.port, this.#options.timeoutMs).catch(
      (): ProbeOutcome => 'silent',
    );
    state.probing = false;
    if (this.#machines.get(machine) !== state) return; // forgotten meanwhile
    if (outcome === 'answered') {
      state.misses = 0;
      if (this.down.delete(machine)) this.#options.onChange(machine, false, state.backends);
      return;
    }
    state.misses += 1;
    if (state.misses >= this.#options.misses && !this.down.has(machine)) {
      this.down.add(machine);
      this.#options.onChange(machine, true, state.backends);
    }
  }

  /** Probes every interval until `stop`. Does nothing when the interval is 0. */
  start(): void {
    if (this.#timer !== undefined || this.#options.intervalMs <= 0) return;
    this.#timer = setInterval(() => void this.round(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
