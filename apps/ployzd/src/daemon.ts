/**
 * The composition root of ployzd. It wires the local API (@ployz/protocol's `LocalApiServer` over
 * its `api` route table), the adopt-first data plane, the NATS link, this machine's agent
 * (@ployz/protocol's `RpcServer`, commands from typed registries) and the plugins (the deploy
 * engine registers itself in `plugins.ts`). Everything here is ephemeral: `stop()` closes, in order, the local API, the
 * plugins (reverse registration order), the agent's RPC listener, the NATS link and the loops; it
 * never stops or removes a container, so the data plane outlives the daemon.
 */
import { mkdir } from 'node:fs/promises';
import {
  type Api,
  type CommandHandlers,
  type CommandRegistry,
  LocalApiServer,
  type RouteHandler,
  type RouteName,
  RpcServer,
} from '@ployz/protocol';
import type { MachineRecord } from '@ployz/types';
import { ERROR_CODES, isErrorCode, PloyzError } from '@ployz/types';
import type { Logger } from 'pino';
import { measureCapacity } from './capacity.ts';
import { natsUrlFromHost } from './component-spec.ts';
import type { DaemonConfig } from './daemon-config.ts';
import { type ComponentStatus, DataPlane, type ReconcileSummary } from './data-plane.ts';
import type { DockerEngine } from './docker-engine.ts';
import { machineCommands } from './machine-commands.ts';
import { MachineDirectory, machineRecordFor } from './machine-directory.ts';
import { createIdentity, type InitRequest, type MachineIdentity, readIdentity } from './machine-identity.ts';
import { NatsLink, type NatsLinkStatus } from './nats-link.ts';

export const DAEMON_VERSION = '0.1.0';

/** What a plugin (e.g. the deploy engine) gets from the daemon. */
export interface DaemonContext {
  readonly config: DaemonConfig;
  readonly logger: Logger;
  readonly docker: DockerEngine;
  /** Aborted when the daemon stops. */
  readonly signal: AbortSignal;
  /**
   * Register machine RPC commands (a `defineCommands` registry and a handler for each) on this
   * machine's subjects, before the daemon starts. A name registered twice is an error.
   */
  registerCommands<R extends CommandRegistry>(commands: R, handlers: CommandHandlers<R>): void;
  /** Implement a route of @ployz/protocol's `api` table (before the daemon starts). */
  implement<N extends RouteName>(name: N, handler: RouteHandler<Api, N>): void;
  /** This machine's identity, or null before `machine init`. */
  identity(): MachineIdentity | null;
  /** The NATS link to this machine's ployz-nats, or null before `machine init`. */
  nats(): NatsLink | null;
}

/** A part of the daemon with its own handlers and lifetime (deploy engine, later: mesh, storage). */
export interface DaemonPlugin {
  readonly name: string;
  /** Once, before the API listens: register RPC commands and API routes. */
  register(ctx: DaemonContext): void | Promise<void>;
  /** When the machine is initialised and NATS is connected (at every daemon start). */
  start?(ctx: DaemonContext, machine: MachineIdentity): Promise<void>;
  /** On daemon stop, in reverse order. Must not touch containers. */
  stop?(): Promise<void>;
}

export interface DaemonStatus {
  daemon: { pid: number; version: string; started_at: string; socket: string; state_dir: string };
  initialised: boolean;
  machine: (MachineIdentity & { record_stored: boolean }) | null;
  reconcile: ReconcileSummary | null;
  components: ComponentStatus[];
  nats: (NatsLinkStatus & { rtt_ms: number | null }) | null;
  agent: { subject: string; commands: string[]; listening: boolean } | null;
}

export class Daemon {
  readonly api = new LocalApiServer();
  readonly #abort = new AbortController();
  readonly #commands: CommandRegistry = {};
  readonly #commandHandlers: CommandHandlers<CommandRegistry> = {};
  readonly startedAt = new Date().toISOString();
  #identity: MachineIdentity | null = null;
  #dataPlane: DataPlane | null = null;
  #nats: NatsLink | null = null;
  #agent: RpcServer<CommandRegistry> | null = null;
  #agentListening = false;
  #recordStored = false;
  #directory: MachineDirectory | null = null;
  #activation: Promise<void> | null = null;
  #started: DaemonPlugin[] = [];
  #stopping = false;

  readonly config: DaemonConfig;
  readonly docker: DockerEngine;
  readonly logger: Logger;
  readonly plugins: DaemonPlugin[];

  constructor(config: DaemonConfig, docker: DockerEngine, logger: Logger, plugins: DaemonPlugin[] = []) {
    this.config = config;
    this.docker = docker;
    this.logger = logger;
    this.plugins = plugins;
  }

  get context(): DaemonContext {
    return {
      config: this.config,
      logger: this.logger,
      docker: this.docker,
      signal: this.#abort.signal,
      registerCommands: (commands, handlers) => {
        for (const name of Object.keys(commands)) {
          if (Object.hasOwn(this.#commands, name))
            throw new PloyzError('INTERNAL', `RPC command ${name} registered twice`);
        }
        Object.assign(this.#commands, commands);
        Object.assign(this.#commandHandlers, handlers);
      },
      implement: (name, handler) => {
        this.api.implement(name, handler);
      },
      identity: () => this.#identity,
      nats: () => this.#nats,
    };
  }

  async start(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
    this.#registerCore();
    for (const plugin of this.plugins) await plugin.register(this.context);
    this.#identity = await readIdentity(this.config.stateDir);
    await this.api.listen(this.config.socketPath);
    this.logger.info(
      {
        socket: this.config.socketPath,
        state_dir: this.config.stateDir,
        initialised: this.#identity !== null,
        unimplemented_routes: this.api.missing(),
      },
      'ployzd listening',
    );
    if (this.#identity) this.#activation = this.#activate(this.#identity);
  }

  /** Resolves when the startup reconcile (if any) has finished; for tests and `machine init`. */
  async settled(): Promise<void> {
    await this.#activation;
  }

  #registerCore(): void {
    const ctx = this.context;
    ctx.implement('status', () => this.status());
    ctx.implement('machineInit', (input) =>
      this.init({
        machineId: input.machine_id,
        installation: input.installation,
        authority: input.authority,
        region: input.region,
      }),
    );
    ctx.implement('machineShow', () => this.machine());
    ctx.implement('machineList', () => this.machines());
    ctx.registerCommands(machineCommands, {
      ping: () => ({
        pong: true as const,
        machine: this.#identity?.machine_id,
        at: new Date().toISOString(),
      }),
      status: () => this.status(),
      capacity: () => measureCapacity(this.config.stateDir),
    });
  }

  async init(request: InitRequest): Promise<{
    machine: MachineIdentity;
    reconcile: ReconcileSummary | null;
    components: ComponentStatus[];
  }> {
    const identity = await createIdentity(this.config.stateDir, request, {
      clusterRange: this.config.clusterRange,
      subnet: this.config.subnet,
      overlayPrefix: this.config.overlayPrefix,
    });
    this.logger.info(
      { machine: identity.machine_id, installation: identity.installation, subnet: identity.subnet },
      'machine initialised',
    );
    this.#identity = identity;
    this.#activation = this.#activate(identity);
    await this.#activation;
    return {
      machine: identity,
      reconcile: this.#dataPlane?.summary() ?? null,
      components: (await this.#dataPlane?.status()) ?? [],
    };
  }

  async #activate(identity: MachineIdentity): Promise<void> {
    const log = this.logger.child({ machine: identity.machine_id });
    const dataPlane = new DataPlane(this.config, this.docker, identity, (event) => {
      if ('outcome' in event) {
        log.info(
          {
            component: event.component,
            outcome: event.outcome,
            reason: event.reason,
            detail: event.detail,
            container_id: event.containerId,
          },
          `component ${event.outcome}`,
        );
      } else {
        log.info({ component: event.component, action: event.kind }, `component ${event.kind} starting`);
      }
    });
    this.#dataPlane = dataPlane;
    const summary = await dataPlane.reconcile();
    if (summary.error) log.error({ error: summary.error }, 'data plane reconcile failed');
    else log.info({ ...summary }, 'data plane reconciled');
    // The first pass is what `machine init` and `settled()` wait for; retries and NATS go on behind.
    void this.#afterReconcile(identity, dataPlane, summary, log);
  }

  async #afterReconcile(
    identity: MachineIdentity,
    dataPlane: DataPlane,
    first: ReconcileSummary,
    log: Logger,
  ): Promise<void> {
    let summary = first;
    // The engine may not answer yet (dockerd starting): retry transient failures with backoff.
    // Other failures (IMAGE_MISSING, NAME_COLLISION on the bridge…) wait for the operator.
    for (let attempt = 1; summary.error && isTransient(summary.error.code) && !this.#stopping; attempt++) {
      await sleep(Math.min(500 * 2 ** attempt, 10_000), this.#abort.signal);
      if (this.#stopping) return;
      summary = await dataPlane.reconcile();
      if (summary.error) log.warn({ error: summary.error, attempt }, 'data plane reconcile failed; retrying');
      else log.info({ ...summary, attempt }, 'data plane reconciled');
    }
    if (this.#stopping) return;
    if (!summary.error) void this.#repairLoop(dataPlane, log);
    const link = new NatsLink(this.config.natsUrl ?? natsUrlFromHost(identity.subnet));
    this.#nats = link;
    link.start();
    await this.#afterNats(identity, link, log);
  }

  /** Live repair: the data plane keeps serving while the daemon runs, not only after a restart. */
  async #repairLoop(dataPlane: DataPlane, log: Logger): Promise<void> {
    const every = this.config.repairIntervalMs;
    if (every === 0) return;
    let lastProblem = '';
    while (!this.#stopping) {
      await sleep(every, this.#abort.signal);
      if (this.#stopping) return;
      try {
        const summary = await dataPlane.repair();
        if (summary?.error) log.error({ error: summary.error }, 'data plane repair failed');
        else if (summary) log.warn({ ...summary }, 'data plane repaired');
        lastProblem = '';
      } catch (error) {
        // Engine away, image gone…: say it once, keep checking.
        const message = errorMessage(error);
        if (message !== lastProblem) log.warn({ err: message }, 'data plane repair check failed');
        lastProblem = message;
      }
    }
  }

  async #afterNats(identity: MachineIdentity, link: NatsLink, log: Logger): Promise<void> {
    const nc = await link.ready();
    if (this.#stopping) return;
    log.info({ url: link.url }, 'nats connected');
    const agent = new RpcServer({
      nc,
      scope: { installation: identity.installation, authority: identity.authority },
      machine: identity.machine_id,
      commands: this.#commands,
    }).handleAll(this.#commandHandlers);
    agent.start();
    this.#agent = agent;
    this.#agentListening = true;
    log.info({ subject: agent.prefix, commands: agent.commands() }, 'agent listening');
    for (let attempt = 1; !this.#stopping; attempt++) {
      try {
        const directory = await MachineDirectory.open(nc, identity);
        const { created } = await directory.ensure(machineRecordFor(identity, [], new Date().toISOString()));
        this.#directory = directory;
        this.#recordStored = true;
        log.info({ created }, created ? 'machine record written' : 'machine record present');
        break;
      } catch (error) {
        log.warn(
          { err: error instanceof Error ? error.message : String(error), attempt },
          'machine record not stored yet',
        );
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 3000)));
      }
    }
    for (const plugin of this.plugins) {
      if (this.#stopping) return;
      try {
        await plugin.start?.(this.context, identity);
        this.#started.push(plugin);
      } catch (error) {
        log.error(
          { plugin: plugin.name, err: error instanceof Error ? error.message : String(error) },
          'plugin failed to start',
        );
      }
    }
  }

  #requireIdentity(): MachineIdentity {
    if (!this.#identity) {
      throw new PloyzError(
        'NOT_INITIALISED',
        'this machine has no Ployz installation yet; run: ployzctl machine init',
      );
    }
    return this.#identity;
  }

  async machine(): Promise<{ machine: MachineIdentity; record: MachineRecord | null }> {
    const identity = this.#requireIdentity();
    const directory = this.#nats?.connection ? this.#directory : null;
    const record = directory ? await directory.get(identity.machine_id) : null;
    return { machine: identity, record };
  }

  async machines(): Promise<MachineRecord[]> {
    this.#requireIdentity();
    const directory = this.#nats?.connection ? this.#directory : null;
    if (!directory) {
      throw new PloyzError(
        'STORE_UNAVAILABLE',
        `NATS (${this.#nats?.url ?? 'ployz-nats'}) is not connected; see ployzctl status`,
      );
    }
    return directory.list();
  }

  async status(): Promise<DaemonStatus> {
    const identity = this.#identity;
    const nats = this.#nats;
    return {
      daemon: {
        pid: process.pid,
        version: DAEMON_VERSION,
        started_at: this.startedAt,
        socket: this.config.socketPath,
        state_dir: this.config.stateDir,
      },
      initialised: identity !== null,
      machine: identity ? { ...identity, record_stored: this.#recordStored } : null,
      reconcile: this.#dataPlane?.summary() ?? null,
      components: (await this.#dataPlane?.status()) ?? [],
      nats: nats ? { ...nats.status(), rtt_ms: await nats.rtt() } : null,
      agent: this.#agent
        ? {
            subject: `${this.#agent.prefix}.<command>`,
            commands: this.#agent.commands(),
            listening: this.#agentListening,
          }
        : null,
    };
  }

  /** Stops the ephemeral parts in a defined order; containers are never touched. */
  async stop(): Promise<string[]> {
    const order: string[] = [];
    this.#stopping = true;
    await this.api.close();
    order.push('local-api');
    for (const plugin of [...this.#started].reverse()) {
      await plugin.stop?.().catch((error: unknown) => {
        this.logger.warn({ plugin: plugin.name, err: String(error) }, 'plugin stop failed');
      });
      order.push(`plugin:${plugin.name}`);
    }
    await this.#agent?.stop();
    this.#agentListening = false;
    order.push('agent-rpc');
    await this.#nats?.close();
    order.push('nats');
    this.#abort.abort();
    order.push('loops');
    return order;
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isTransient(code: string): boolean {
  return isErrorCode(code) && ERROR_CODES[code].kind === 'transient';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
