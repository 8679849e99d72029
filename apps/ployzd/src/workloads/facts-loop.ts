/**
 * The thin loop around instance-facts.ts: on start, on every Docker container event (and each
 * reconnect to the engine) and every `intervalMs`, this machine's running instance records are
 * compared with the engine's workload containers. A changed verdict is written compare-and-set
 * (re-read on a lost race, so a deploy's concurrent write is never overwritten) and published as
 * an `instance_upserted` routing event, so the gateway and DNS drop or restore the instance.
 */
import { LABELS } from '@ployz/identity';
import type { Store } from '@ployz/store';
import type Docker from 'dockerode';
import type { DaemonContext, DaemonPlugin } from '../daemon/daemon.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { followContainerEvents } from '../runtime/docker.ts';
import { dockerStatus } from '../runtime/docker-errors.ts';
import { afterCheck, type EngineFact, factMismatch, isChecked } from './instance-facts.ts';

export interface FactsLoopOptions {
  docker: Docker;
  store: Store;
  machine: string;
  bridge: string;
  intervalMs: number;
  /** Told about every verdict that changed a record (for logs). */
  onChange?: (change: { instance: string; error: string | null }) => void;
  onError?: (error: unknown) => void;
}

export class FactsLoop {
  readonly #opts: FactsLoopOptions;
  readonly #abort = new AbortController();
  #running: Promise<void> | null = null;
  #again = false;
  #retry: NodeJS.Timeout | null = null;

  constructor(opts: FactsLoopOptions) {
    this.#opts = opts;
  }

  start(): void {
    const signal = this.#abort.signal;
    this.trigger();
    void followContainerEvents(
      this.#opts.docker,
      {
        onConnect: () => this.trigger(),
        onEvent: (e) => {
          if (e.labels[LABELS.kind] === 'workload') this.trigger();
        },
      },
      signal,
    );
    const tick = setInterval(() => this.trigger(), Math.max(100, this.#opts.intervalMs));
    signal.addEventListener('abort', () => clearInterval(tick), { once: true });
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    if (this.#retry !== null) clearTimeout(this.#retry);
    await this.#running;
  }

  /** Run a check soon; checks never overlap, and one asked for during a check runs after it. */
  trigger(): void {
    if (this.#abort.signal.aborted) return;
    if (this.#running !== null) {
      this.#again = true;
      return;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.check().catch((error: unknown) => {
          // NATS or the engine away (a restart): look again shortly, not only at the next tick.
          this.#opts.onError?.(error);
          this.#retry ??= setTimeout(() => {
            this.#retry = null;
            this.trigger();
          }, 1000);
        });
      } while (this.#again && !this.#abort.signal.aborted);
      this.#running = null;
    })();
  }

  /** One pass: returns how many records changed. */
  async check(): Promise<number> {
    const { store, machine } = this.#opts;
    const facts = await this.#facts();
    let changed = 0;
    for (const { value: record } of await store.instances.list()) {
      if (!isChecked(record, machine)) continue;
      const at = new Date().toISOString();
      let fact = pick(facts, record);
      if (afterCheck(record, factMismatch(record, fact), at) === undefined) continue;
      // A listing taken while the engine changes can miss a container: confirm with an inspect.
      if (record.container_id !== null) fact = (await this.#inspect(record.container_id)) ?? fact;
      if (afterCheck(record, factMismatch(record, fact), at) === undefined) continue;
      let written = false;
      const saved = await store.instances.modify([record.namespace, record.service, record.id], (cur) => {
        if (cur === null || !isChecked(cur, machine)) return undefined;
        const next = afterCheck(
          cur,
          factMismatch(cur, cur.container_id === record.container_id ? fact : pick(facts, cur)),
          at,
        );
        written = next !== undefined;
        return next;
      });
      if (!written || saved === null) continue;
      changed++;
      await store.routing.append({ type: 'instance_upserted', instance: saved.value, deploy_id: null, at });
      this.#opts.onChange?.({ instance: saved.value.id, error: saved.value.error });
    }
    return changed;
  }

  /** The engine's word on one container; undefined when it is gone. */
  async #inspect(id: string): Promise<EngineFact | undefined> {
    try {
      const info = await this.#opts.docker.getContainer(id).inspect();
      const running = info.State.Running;
      const ip = running ? info.NetworkSettings.Networks[this.#opts.bridge]?.IPAddress || null : null;
      return { container_id: info.Id, running, ip };
    } catch (error) {
      if (dockerStatus(error) === 404) return undefined;
      throw error;
    }
  }

  async #facts(): Promise<Map<string, EngineFact[]>> {
    const { docker, machine, bridge } = this.#opts;
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.kind}=workload`, `${LABELS.machine}=${machine}`] },
    });
    const facts = new Map<string, EngineFact[]>();
    for (const c of containers) {
      const instance = c.Labels?.[LABELS.instance];
      if (instance === undefined) continue;
      const running = c.State === 'running';
      const ip = running ? c.NetworkSettings?.Networks?.[bridge]?.IPAddress || null : null;
      facts.set(instance, [...(facts.get(instance) ?? []), { container_id: c.Id, running, ip }]);
    }
    return facts;
  }
}

/** The container the record names when it is there, else any container of that instance. */
function pick(
  facts: Map<string, EngineFact[]>,
  record: { id: string; container_id: string | null },
): EngineFact | undefined {
  const all = facts.get(record.id) ?? [];
  return all.find((f) => f.container_id === record.container_id) ?? all[0];
}

/** The facts loop as a daemon plugin: started once the machine is initialised and NATS is up. */
export function factsPlugin(): DaemonPlugin {
  let loop: FactsLoop | null = null;
  return {
    name: 'instance-facts',
    register() {},
    async start(ctx: DaemonContext, machine: MachineIdentity) {
      const log = ctx.logger.child({ plugin: 'instance-facts' });
      const store = ctx.store();
      loop = new FactsLoop({
        docker: ctx.docker.docker,
        store,
        machine: machine.machine_id,
        bridge: ctx.config.bridgeName,
        intervalMs: ctx.config.repairIntervalMs || 10_000,
        onChange: (c) =>
          c.error === null ? log.info(c, 'instance verified again') : log.warn(c, 'instance not verified'),
        onError: (error) => log.warn({ err: String(error) }, 'instance facts check failed'),
      });
      loop.start();
    },
    async stop() {
      await loop?.stop();
      loop = null;
    },
  };
}
