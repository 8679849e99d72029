/**
 * The composition root of ployzd. It wires the local API (@ployz/protocol's `LocalApiServer` over
 * its `api` route table), the adopt-first data plane, the NATS link, this machine's agent
 * (@ployz/protocol's `RpcServer`, commands from typed registries) and the plugins (the deploy
 * engine registers itself in `plugins.ts`). Everything here is ephemeral: `stop()` closes, in order, the local API and the metrics listener, the
 * plugins (reverse registration order), the agent's RPC listener, the NATS link and the loops; it
 * never stops or removes a container, so the data plane outlives the daemon.
 *
 * Length: ~480 lines on purpose — the one life cycle (start → activate → reconcile → NATS →
 * agent → plugins → stop) reads top to bottom here; each room's work lives in its own folder.
 */
import { mkdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import {
  type CertificatesStatus,
  type CommandHandlers,
  type CommandRegistry,
  LocalApiServer,
  type MachineListEntry,
  type Plain,
  parseRegistryHost,
  type RoutesView,
  RpcClient,
  RpcServer,
  type StatusView,
  type StoreStatusView,
} from '@ployz/protocol';
import { reachesClusterThroughLeaf, routingRetentionFromEnv, Store } from '@ployz/store';
import type { MachineRecord } from '@ployz/types';
import { ERROR_CODES, isErrorCode, PloyzError } from '@ployz/types';
import type { Logger } from 'pino';
import { natsMonitorUrlFromHost, natsUrlFromHost, networkingAddress } from '../dataplane/component-spec.ts';
import { watchEngine } from '../dataplane/engine-watch.ts';
import {
  type ComponentStatus,
  DataPlane,
  type DataPlaneImageEvent,
  type ReconcileSummary,
} from '../dataplane/supervisor.ts';
import { lanAddress, parseEndpoints, recordEndpoints } from '../fleet/endpoint.ts';
import { issueInvite, parseInviteTtl } from '../fleet/invite.ts';
import { decodeInvite } from '../fleet/invite-token.ts';
import { acceptJoin } from '../fleet/join-accept.ts';
import { JoinListener, requestJoin } from '../fleet/join-listener.ts';
import { collectJoinSecrets, installJoinSecrets, openJoinSecrets } from '../fleet/join-secrets.ts';
import { knownPeers, saveKnownPeers } from '../fleet/known-peers.ts';
import { drainMachine, removeMachine } from '../fleet/machine-lifecycle.ts';
import { measureCapacity } from '../machine/capacity.ts';
import { MachineDirectory, machineRecordFor } from '../machine/directory.ts';
import {
  createIdentity,
  defaultMachineId,
  generateWireguardKeys,
  type InitRequest,
  type MachineIdentity,
  readIdentity,
} from '../machine/identity.ts';
import { ensureInviteKey, type InviteKey, readInviteKey } from '../machine/invite-key.ts';
import { ensureNatsCredentials, ployzdSeedSource } from '../machine/nats-credentials.ts';
import {
  finishInterruptedRotation,
  type RotationResult,
  rotateNatsCredentials,
} from '../machine/nats-rotation.ts';
import { dockerExecRunner } from '../mesh/command.ts';
import { type MeshEvent, MeshManager, networkingTargets } from '../mesh/manager.ts';
import { WireguardInterface } from '../mesh/wireguard.ts';
import { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import { MetricsListener } from '../metrics/listener.ts';
import type { DockerEngine } from '../runtime/docker.ts';
import { NatsLink } from '../runtime/nats-link.ts';
import { defaultStorage, parseStorageSpec, volumeDriver } from '../storage/storage-spec.ts';
import { readStoreLeaf, storeLeafPresent, writeStoreLeaf } from '../store-promote/member-state.ts';
import { storageMachines } from '../store-promote/plugin.ts';
import type { DaemonConfig } from './config.ts';
import type { DaemonContext, DaemonPlugin } from './context.ts';
import { type MachineCommands, machineCommands } from './machine-commands.ts';

export const DAEMON_VERSION = '0.1.0';

// The plugin seam lives in context.ts; importers of daemon.ts keep finding it here.
export type { DaemonContext, DaemonPlugin } from './context.ts';

export class Daemon {
  readonly api = new LocalApiServer();
  readonly #abort = new AbortController();
  readonly #commands: CommandRegistry = {};
  readonly #commandHandlers: CommandHandlers<CommandRegistry> = {};
  readonly startedAt = new Date().toISOString();
  #identity: MachineIdentity | null = null;
  #dataPlane: DataPlane | null = null;
  #mesh: MeshManager | null = null;
  #nats: NatsLink | null = null;
  #agent: RpcServer<CommandRegistry> | null = null;
  #agentListening = false;
  #recordStored = false;
  #directory: MachineDirectory | null = null;
  #store: Store | null = null;
  #activation: Promise<void> | null = null;
  #started: DaemonPlugin[] = [];
  #stopping = false;
  #joinListener: JoinListener | null = null;
  /** host:port the join listener is bound to; null while it is not listening. */
  #joinAddress: string | null = null;
  /** ployzd's own Prometheus metrics (metrics/), served on --metrics-listen. */
  readonly metrics = new DaemonMetrics(DAEMON_VERSION);
  #metricsListener: MetricsListener | null = null;
  /** host:port the metrics listener is bound to; null while it is not listening. */
  metricsAddress: string | null = null;

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
      metrics: this.metrics,
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
      implementTunnel: (name, handler) => {
        this.api.implementTunnel(name, handler);
      },
      identity: () => this.#identity,
      dataPlane: () => this.#dataPlane,
      nats: () => this.#nats,
      store: () => {
        if (this.#store === null) {
          throw new PloyzError('STORE_UNAVAILABLE', 'NATS is not connected yet; see ployzctl status');
        }
        return this.#store;
      },
    };
  }

  async start(): Promise<void> {
    await mkdir(this.config.stateDir, { recursive: true, mode: 0o700 });
    this.#registerCore();
    for (const plugin of this.plugins) await plugin.register(this.context);
    this.#identity = await readIdentity(this.config.stateDir);
    await this.api.listen(this.config.socketPath);
    await this.#listenMetrics();
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

  /** Metrics are not essential: a taken port is logged and ployzd runs on without them. */
  async #listenMetrics(): Promise<void> {
    this.metrics.start();
    const where = this.config.metricsListen;
    if (where === null) return;
    const listener = new MetricsListener(() => this.metrics.render());
    try {
      this.metricsAddress = await listener.listen(where.host, where.port);
      this.#metricsListener = listener;
      this.logger.info({ address: this.metricsAddress, path: '/metrics' }, 'metrics listening');
    } catch (error) {
      this.logger.error(
        { host: where.host, port: where.port, err: errorMessage(error) },
        'metrics cannot listen (set --metrics-listen host:port or off); ployzd runs without them',
      );
    }
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
        storage: input.storage,
        endpoints: input.endpoints,
        registry: input.registry,
      }),
    );
    ctx.implement('machineInvite', (input) => this.invite(input));
    ctx.implement('machineJoin', (input) => this.join(input));
    ctx.implement('machineShow', () => this.machine());
    ctx.implement('machineList', () => this.machines());
    ctx.implement('machineDrain', (b) => drainMachine(this.#requireStore(), b.machine, new Date()));
    ctx.implement('machineRemove', async (b) => {
      const store = this.#requireStore();
      const identity = this.#requireIdentity();
      return removeMachine(store, b.machine, {
        force: b.force,
        self: identity.machine_id,
        now: new Date(),
        storage: await storageMachines(store, identity),
      });
    });
    ctx.implement('machineCredentialsRotate', () => this.rotateCredentials());
    ctx.registerCommands(machineCommands, this.machineCommandHandlers());
  }

  /** The handlers of the machine commands every ployzd answers (ping, status, capacity). */
  machineCommandHandlers(): CommandHandlers<MachineCommands> {
    return {
      ping: () => ({
        pong: true as const,
        machine: this.#identity?.machine_id,
        at: new Date().toISOString(),
      }),
      status: () => this.status(),
      capacity: () => measureCapacity(this.config.stateDir),
    };
  }

  async init(request: InitRequest): Promise<{
    machine: MachineIdentity;
    reconcile: ReconcileSummary | null;
    components: ComponentStatus[];
  }> {
    // Endpoints, registry and storage are checked before anything is written: bad input changes nothing.
    const endpoints = parseEndpoints(request.endpoints ?? []);
    const registry = registryArgument(request.registry);
    const storage = request.storage ?? this.config.storage ?? defaultStorage(this.config.stateDir);
    if ((await readIdentity(this.config.stateDir)) === null)
      await volumeDriver(parseStorageSpec(storage)).probe();
    const identity = await createIdentity(
      this.config.stateDir,
      { ...request, storage, endpoints, registry },
      {
        clusterRange: this.config.clusterRange,
        subnet: this.config.subnet,
        overlayPrefix: this.config.overlayPrefix,
      },
    );
    this.logger.info(
      { machine: identity.machine_id, installation: identity.installation, subnet: identity.subnet },
      'machine initialised',
    );
    return this.#up(identity);
  }

  async #up(identity: MachineIdentity): Promise<{
    machine: MachineIdentity;
    reconcile: ReconcileSummary | null;
    components: ComponentStatus[];
  }> {
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
    // The installation's first machine holds the invite key (created at init, or at the first
    // start of a machine initialised before invites existed); a machine that joined has none.
    if (identity.joined_from === undefined) {
      const { created } = await ensureInviteKey(this.config.stateDir);
      if (created) log.info({}, 'installation invite key created');
    }
    const dataPlane = new DataPlane(
      this.config,
      this.docker,
      identity,
      (event) => {
        if ('outcome' in event) {
          this.metrics.reconciled(event.component, event.outcome);
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
      },
      imageLogger(log),
    );
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
    if (!summary.error && this.config.natsUrl === undefined) {
      // A rotation cut short by a stop is finished; ployz-nats re-reads the config on disk.
      try {
        const finished = await finishInterruptedRotation({
          stateDir: this.config.stateDir,
          scope: identity,
          reload: () => dataPlane.reloadNats(),
        });
        if (finished) log.warn({}, 'finished a nats credentials rotation interrupted by a stop');
      } catch (error) {
        log.warn({ err: errorMessage(error) }, 'cannot reload ployz-nats');
      }
    }
    if (!summary.error && this.config.repairIntervalMs !== 0) {
      void this.#repairLoop(dataPlane, log);
      // Docker's event stream (and each reconnect after a dockerd restart) asks for repair at once.
      const onError = (error: unknown) =>
        log.warn({ err: errorMessage(error) }, 'data plane repair check failed');
      const repair = async () => {
        const repaired = logRepair(await dataPlane.repair(), log);
        // A recreated ployz-networking has a wg0 without peers: the mesh applies them again.
        if (repaired !== null) this.#mesh?.kick();
        return repaired;
      };
      watchEngine(
        this.docker.docker,
        { installation: identity.installation, repair, onError },
        this.#abort.signal,
      );
    }
    // Before NATS: a member's ployz-nats reaches the storage machine only through wg0.
    if (!summary.error && !this.#stopping) await this.#startMesh(identity, log);
    // The machine's own ployz-nats requires ployzd's NKey; an operator-given URL is used as is.
    const link =
      this.config.natsUrl !== undefined
        ? new NatsLink(this.config.natsUrl)
        : new NatsLink(natsUrlFromHost(identity.subnet), await this.#ployzdSeed(identity));
    this.#nats = link;
    link.start();
    // After a promotion ployz-nats is a leaf of the store cluster: a silent store is no quorum.
    const stateDir = this.config.stateDir;
    void link.ready().then((nc) => reachesClusterThroughLeaf(nc, () => storeLeafPresent(stateDir)));
    await this.#afterNats(identity, link, log);
  }

  /** ployzd's NATS identity: created if missing, then re-read from disk at every reconnect (rotation). */
  async #ployzdSeed(identity: MachineIdentity): Promise<() => string> {
    await ensureNatsCredentials(this.config.stateDir, identity);
    return ployzdSeedSource(this.config.stateDir);
  }

  #rotation: Promise<unknown> = Promise.resolve();

  /** `ployzctl machine credentials rotate`: one rotation at a time (machine/nats-rotation.ts). */
  async rotateCredentials(): Promise<RotationResult & { machine: string }> {
    const identity = this.#requireIdentity();
    const dataPlane = this.#dataPlane;
    if (this.config.natsUrl !== undefined) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `ployzd uses an operator-given NATS server (${this.config.natsUrl}); its credentials are managed there, not by ployzd`,
      );
    }
    if (dataPlane === null) {
      throw new PloyzError('ENGINE_NOT_READY', 'the data plane is not started yet; retry in a moment');
    }
    const run = this.#rotation.then(() =>
      rotateNatsCredentials({
        stateDir: this.config.stateDir,
        scope: identity,
        natsUrl: natsUrlFromHost(identity.subnet),
        monitorUrl: natsMonitorUrlFromHost(identity.subnet),
        reload: () => dataPlane.reloadNats(),
      }),
    );
    this.#rotation = run.catch(() => {});
    const result = await run;
    this.logger.info(
      { machine: identity.machine_id, public_keys: result.public_keys, reconnected: result.reconnected },
      'nats credentials rotated',
    );
    return { machine: identity.machine_id, ...result };
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
        logRepair(await dataPlane.repair(), log);
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
        // The one Store of this daemon: plugins share it (DaemonContext.store()).
        // Routing-event retention: PLOYZ_ROUTING_EVENTS_MAX_MSGS / _MAX_AGE_MS (unset: the default).
        const routingRetention = routingRetentionFromEnv(process.env);
        this.#store ??= await Store.fromConnection(nc, {
          installation: identity.installation,
          authority: identity.authority,
          ...(routingRetention === undefined ? {} : { routingRetention }),
        });
        const directory = new MachineDirectory(this.#store);
        const endpoints = this.#endpoints(identity);
        const now = new Date().toISOString();
        const { created, updated } = await directory.ensure(machineRecordFor(identity, endpoints, now));
        this.#directory = directory;
        this.#recordStored = true;
        log.info(
          { created, updated, endpoints },
          created
            ? 'machine record written'
            : updated
              ? 'machine record endpoints updated'
              : 'machine record present',
        );
        break;
      } catch (error) {
        log.warn(
          { err: error instanceof Error ? error.message : String(error), attempt },
          'machine record not stored yet',
        );
        await new Promise((r) => setTimeout(r, Math.min(250 * attempt, 3000)));
      }
    }
    if (this.#store !== null && !this.#stopping) await this.#startJoinListener(identity, this.#store, log);
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

  /** wg0's peers and the host's peer routes follow the machine records (mesh/manager.ts). */
  async #startMesh(identity: MachineIdentity, log: Logger): Promise<void> {
    const container = `${this.config.containerPrefix}networking`;
    let lastError = '';
    const onEvent = (event: MeshEvent) => {
      if (event.kind === 'error') {
        const message = errorMessage(event.error);
        if (message !== lastError) log.warn({ err: message }, 'mesh not applied; retrying');
        lastError = message;
        return;
      }
      lastError = '';
      if (event.kind === 'key_mismatch') {
        log.error(
          { expected: event.expected, actual: event.actual },
          'wg0 carries another key than this machine; mesh left alone',
        );
      } else if (event.wireguard.peers.length + event.host.replaced.length + event.host.removed.length > 0) {
        log.info(
          { peers: event.peers, changes: event.wireguard.peers.map((c) => c.kind), host_routes: event.host },
          'mesh applied',
        );
      }
    };
    this.#mesh = new MeshManager({
      self: { id: identity.machine_id, public_key: identity.public_key },
      feed: () => this.#store?.routing ?? null,
      known: await knownPeers(this.config.stateDir).catch((error: unknown) => {
        log.warn({ err: errorMessage(error) }, 'known peers not read; the mesh waits for the store');
        return [];
      }),
      onApplied: (machines) => saveKnownPeers(this.config.stateDir, machines),
      targets: networkingTargets(this.docker.docker, container, networkingAddress(identity.subnet)),
      onEvent,
    });
    void this.#mesh.run(this.#abort.signal);
  }

  /** This machine's LAN address: configured, else the first non-loopback IPv4 one. */
  #lanAddress(): string | null {
    return (
      this.config.lanAddress ??
      lanAddress(networkInterfaces(), {
        interfaces: [this.config.bridgeName],
        cidrs: [this.config.clusterRange],
      })
    );
  }

  #endpoints(identity: MachineIdentity): string[] {
    return recordEndpoints(identity.endpoints, this.#lanAddress(), this.config.wireguardPort);
  }

  /** Members that hold the invite key answer joins on `<LAN address>:<join port>`. */
  async #startJoinListener(identity: MachineIdentity, store: Store, log: Logger): Promise<void> {
    const key = await readInviteKey(this.config.stateDir);
    const host = this.#lanAddress();
    if (key === null || host === null) {
      if (key !== null) log.warn({}, 'no LAN address found (set --lan-address); join listener not started');
      return;
    }
    const listener = new JoinListener(
      async (request) => {
        const answer = await acceptJoin(
          {
            store,
            key: key.publicKey,
            installation: identity.installation,
            authority: identity.authority,
            clusterRange: this.config.clusterRange,
            overlayPrefix: this.config.overlayPrefix,
            storeHubs: identity.nats_hubs ?? [identity.overlay_ip],
            storeMembers: async () => {
              const leaf = await readStoreLeaf(this.config.stateDir);
              return leaf === null ? null : { members: leaf.members, run: leaf.run };
            },
            secrets: () => collectJoinSecrets(this.config.stateDir),
            now: () => new Date(),
          },
          request,
        ).catch((error: unknown) => {
          log.warn({ joiner: request.machine_id, err: errorMessage(error) }, 'join refused');
          throw error;
        });
        log.info({ joiner: answer.machine_id, subnet: answer.subnet }, 'machine joined');
        return answer;
      },
      (error) => log.warn({ err: errorMessage(error) }, 'join listener request failed'),
    );
    try {
      this.#joinAddress = await listener.listen(host, this.config.joinPort);
      this.#joinListener = listener;
      log.info({ address: this.#joinAddress }, 'join listener listening');
    } catch (error) {
      log.warn({ host, port: this.config.joinPort, err: errorMessage(error) }, 'join listener cannot listen');
    }
  }

  /** `ployzctl machine invite`: a signed, expiring, single-use token (fleet/invite.ts). */
  async invite(input: { ttl: string; region?: string | undefined; endpoints?: string[] | undefined }) {
    const identity = this.#requireIdentity();
    const ttlMs = parseInviteTtl(input.ttl);
    const endpointsGiven = parseEndpoints(input.endpoints ?? []);
    const key: InviteKey | null = await readInviteKey(this.config.stateDir);
    if (key === null) {
      throw new PloyzError(
        'NOT_FOUND',
        `this machine holds no installation invite key (it joined from ${identity.joined_from ?? 'another machine'}); run ployzctl machine invite on ${identity.joined_from ?? "the installation's first machine"}`,
      );
    }
    const store = this.context.store();
    if (this.#joinAddress === null) {
      throw new PloyzError(
        'ENGINE_NOT_READY',
        "the join listener is not listening (see ployzd's log: no LAN address, or the join port is taken); set --lan-address / --join-port",
      );
    }
    const endpoints = endpointsGiven.length > 0 ? endpointsGiven : this.#endpoints(identity);
    const { token, invite } = await issueInvite(store, key, {
      installation: identity.installation,
      issuer: identity.machine_id,
      issuer_public_key: identity.public_key,
      issuer_endpoints: endpoints,
      join: this.#joinAddress,
      region: input.region ?? null,
      ttlMs,
      now: new Date(),
    });
    this.logger.info({ nonce: invite.nonce, expires_at: invite.expires_at.toISOString() }, 'invite issued');
    return {
      token,
      installation: invite.installation,
      issuer: invite.issuer,
      join: invite.join,
      endpoints,
      region: invite.region,
      expires_at: invite.expires_at.toISOString(),
    };
  }

  /**
   * `ployzctl machine join <token>`: nothing is written here before the issuer accepted the
   * token (it verifies signature, installation, expiry and single use); then the identity is
   * created from its answer and the data plane comes up as after `machine init`.
   */
  async join(input: {
    token: string;
    machine_id?: string | undefined;
    storage?: string | undefined;
    endpoints?: string[] | undefined;
    registry?: string | undefined;
  }) {
    const existing = await readIdentity(this.config.stateDir);
    if (existing) {
      throw new PloyzError(
        'ALREADY_INITIALISED',
        `this machine is already ${existing.machine_id} in installation ${existing.installation}; nothing was changed`,
        { details: { machine_id: existing.machine_id, installation: existing.installation } },
      );
    }
    const { invite } = decodeInvite(input.token);
    const endpoints = parseEndpoints(input.endpoints ?? []);
    const registry = registryArgument(input.registry);
    const storage = input.storage ?? this.config.storage ?? defaultStorage(this.config.stateDir);
    // zfs/btrfs are probed before the issuer is asked (a missing tool or pool changes nothing);
    // a dir root is only created by its probe, so that one waits for the issuer's yes.
    const spec = parseStorageSpec(storage);
    const driver = volumeDriver(spec);
    if (spec.kind !== 'dir') await driver.probe();
    const machineId = input.machine_id ?? defaultMachineId();
    const keys = await generateWireguardKeys();
    const answer = await requestJoin(invite.join, {
      token: input.token,
      machine_id: machineId,
      public_key: keys.publicKey,
      endpoints: recordEndpoints(endpoints, this.#lanAddress(), this.config.wireguardPort),
    });
    // Opened before anything is written here: a box this machine cannot open leaves it untouched.
    const secrets = openJoinSecrets(answer.secrets, keys, answer.machine_id);
    const identity = await createIdentity(
      this.config.stateDir,
      {
        machineId: answer.machine_id,
        installation: answer.installation,
        authority: answer.authority,
        region: answer.region,
        storage,
        endpoints,
        registry,
      },
      {
        clusterRange: this.config.clusterRange,
        subnet: answer.subnet,
        overlayPrefix: this.config.overlayPrefix,
      },
      { keys, overlayIp: answer.overlay_ip, issuer: invite.issuer, natsHubs: answer.store_hubs },
    );
    await installJoinSecrets(this.config.stateDir, secrets);
    // A promoted store: this machine's ployz-nats is a leaf of the three members from the start.
    if (answer.store_members !== undefined) {
      await writeStoreLeaf(this.config.stateDir, {
        ...answer.store_members,
        switched_at: new Date().toISOString(),
      });
    }
    this.logger.info(
      {
        machine: identity.machine_id,
        installation: identity.installation,
        subnet: identity.subnet,
        issuer: invite.issuer,
      },
      'machine joined',
    );
    await saveKnownPeers(this.config.stateDir, [answer.record, ...answer.peers]);
    if (spec.kind === 'dir') await driver.probe();
    return this.#up(identity);
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

  #requireStore(): Store {
    this.#requireIdentity();
    if (this.#store === null || !this.#nats?.connection) {
      throw new PloyzError(
        'STORE_UNAVAILABLE',
        `NATS (${this.#nats?.url ?? 'ployz-nats'}) is not connected; see ployzctl status`,
      );
    }
    return this.#store;
  }

  async machines(): Promise<MachineListEntry[]> {
    const identity = this.#requireIdentity();
    const records = await new MachineDirectory(this.#requireStore()).list();
    const nc = this.#nats?.connection;
    const rpc =
      nc === null || nc === undefined
        ? null
        : new RpcClient({
            nc,
            scope: { installation: identity.installation, authority: identity.authority },
            commands: machineCommands,
          });
    const handshakes = new Map<string, number>();
    try {
      const wg = new WireguardInterface(
        dockerExecRunner(this.docker.docker, `${this.config.containerPrefix}networking`),
        { where: 'networking' },
      );
      for (const peer of (await wg.read()).peers) handshakes.set(peer.publicKey, peer.latestHandshake);
    } catch {
      // wg0 not readable now (networking away): no handshake column, the records still list.
    }
    return Promise.all(
      records.map(async (record): Promise<MachineListEntry> => {
        const seconds = handshakes.get(record.public_key) ?? 0;
        const handshake_at = seconds > 0 ? new Date(seconds * 1000).toISOString() : null;
        const started = performance.now();
        try {
          if (rpc === null) throw new Error('NATS is not connected');
          await rpc.call(record.id, 'ping', null, { timeoutMs: 1500 });
          const rtt_ms = Math.round((performance.now() - started) * 10) / 10;
          return { ...record, live: { reachable: true, rtt_ms, handshake_at, detail: null } };
        } catch (error) {
          return {
            ...record,
            live: { reachable: false, rtt_ms: null, handshake_at, detail: errorMessage(error) },
          };
        }
      }),
    );
  }

  async status(): Promise<Plain<StatusView>> {
    const identity = this.#identity;
    const nats = this.#nats;
    // Read in the same tick as the components' results (dataPlane.status() takes them before its
    // first await): a pass that ends while status awaits the engine must not pair its summary
    // with the previous pass's components (a CI failure: created 4, every component 'pending').
    const reconcile = this.#dataPlane?.summary() ?? null;
    // The parts that ask docker or the store at once: each bounded (STATUS_PART_MS), so a frozen
    // store costs status one bound, not one per part.
    const [components, rttMs, routes, certificates, store] = await Promise.all([
      this.#dataPlane?.status() ?? [],
      nats ? answerWithin(nats.rtt(), STATUS_PART_MS, null) : null,
      this.#routes(),
      this.#certificates(),
      this.#storeStatus(),
    ]);
    return {
      daemon: {
        pid: process.pid,
        version: DAEMON_VERSION,
        started_at: this.startedAt,
        socket: this.config.socketPath,
        state_dir: this.config.stateDir,
        supervisor: process.env.PLOYZD_SUPERVISOR ?? 'none',
      },
      initialised: identity !== null,
      machine: identity ? { ...identity, record_stored: this.#recordStored } : null,
      reconcile,
      components,
      nats: nats ? { ...nats.status(), rtt_ms: rttMs } : null,
      agent: this.#agent
        ? {
            subject: `${this.#agent.prefix}.<command>`,
            commands: this.#agent.commands(),
            listening: this.#agentListening,
          }
        : null,
      routes,
      join: identity ? { address: this.#joinAddress } : null,
      certificates,
      store,
    };
  }

  async #storeStatus(): Promise<Plain<StoreStatusView> | null> {
    return this.#pluginStatus(
      (p) => p.storeStatus?.(),
      (error) => ({ replicas: 0, leader: null, assets: [], promotion: null, peers: [], error }),
    );
  }

  async #certificates(): Promise<Plain<CertificatesStatus> | null> {
    return this.#pluginStatus(
      (p) => p.certificates?.(),
      (error) => ({
        directory_url: this.config.acmeDirectory,
        total: 0,
        valid: 0,
        pending: 0,
        failing: [],
        error,
      }),
    );
  }

  async #routes(): Promise<Plain<RoutesView> | null> {
    return this.#pluginStatus<Plain<RoutesView>>(
      async (p) =>
        p.routeConflicts === undefined ? undefined : { conflicts: await p.routeConflicts(), error: null },
      (error) => ({ conflicts: [], error }),
    );
  }

  /**
   * The first started plugin's answer to an optional status hook (`ask` gives undefined when a
   * plugin lacks it); null when none has it, and `failed(message)` when the hook throws, so one
   * plugin's error becomes a line of `status`, never a failed status.
   */
  async #pluginStatus<T>(
    ask: (p: DaemonPlugin) => Promise<T | undefined> | undefined,
    failed: (message: string) => T,
  ): Promise<T | null> {
    for (const plugin of this.#started) {
      const answer = ask(plugin);
      if (answer === undefined) continue;
      try {
        const view = await answerWithin(answer, STATUS_PART_MS, NO_ANSWER);
        if (view === NO_ANSWER) {
          return failed(
            `no answer in ${STATUS_PART_MS / 1000} s (is the store reachable? ployzctl status --json names the NATS link)`,
          );
        }
        if (view !== undefined) return view;
      } catch (error) {
        return failed(errorMessage(error));
      }
    }
    return null;
  }

  /** Stops the ephemeral parts in a defined order; containers are never touched. */
  async stop(): Promise<string[]> {
    const order: string[] = [];
    this.#stopping = true;
    await this.api.close();
    order.push('local-api');
    await this.#metricsListener?.close();
    this.#metricsListener = null;
    this.metricsAddress = null;
    this.metrics.stop();
    order.push('metrics');
    await this.#joinListener?.close();
    this.#joinListener = null;
    this.#joinAddress = null;
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

/** `--registry` of machine init/join, checked before anything is written (INVALID_ARGUMENT). */
function registryArgument(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const parsed = parseRegistryHost(text);
  if (!parsed.ok)
    throw new PloyzError('INVALID_ARGUMENT', `--registry ${parsed.message}; nothing was changed`);
  return parsed.host;
}

/**
 * The data plane's image events as log lines: a pull's start and end at info, its progress at
 * most every 2 s per image (one line per layer state change would be hundreds).
 */
function imageLogger(log: Logger): (event: DataPlaneImageEvent) => void {
  const last = new Map<string, number>();
  return (event) => {
    switch (event.kind) {
      case 'pull_start':
        log.info({ component: event.component, image: event.image }, 'pulling data-plane image');
        return;
      case 'pull_progress': {
        const now = Date.now();
        if (now - (last.get(event.image) ?? 0) < 2000 && event.status !== 'Pull complete') return;
        last.set(event.image, now);
        log.info(
          {
            component: event.component,
            image: event.image,
            status: event.status,
            layer: event.layer,
            current: event.current,
            total: event.total,
          },
          'pull progress',
        );
        return;
      }
      case 'pulled':
        log.info(
          {
            component: event.component,
            image: event.ref,
            image_id: event.id,
            digest: event.digest,
            version: event.version,
            ms: event.ms,
          },
          'data-plane image pulled and verified',
        );
        return;
      default: {
        const never: never = event;
        return never;
      }
    }
  };
}

function logRepair(summary: ReconcileSummary | null, log: Logger): ReconcileSummary | null {
  if (summary?.error) log.error({ error: summary.error }, 'data plane repair failed');
  else if (summary) log.warn({ ...summary }, 'data plane repaired');
  return summary;
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

/**
 * How long one part of `status` may take (a store round trip, the NATS rtt): status answers
 * while the store is unreachable, naming what did not answer, instead of waiting for it.
 */
const STATUS_PART_MS = 3000;
const NO_ANSWER: unique symbol = Symbol('no answer');

/** `promise`'s value, or `fallback` when it has not settled within `ms` (a rejection still rejects). */
function answerWithin<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
