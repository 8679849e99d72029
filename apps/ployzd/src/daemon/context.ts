/**
 * The plugin seam of ployzd (DESIGN.md §2.1 daemon/): what a plugin — the deploy engine, the
 * events route, the facts loop; later the mesh and storage — gets from the daemon, the plugin's
 * own life cycle. The status view the daemon answers with is @ployz/protocol's `StatusView`.
 */
import type {
  Api,
  CertificatesStatus,
  CommandHandlers,
  CommandRegistry,
  RouteHandler,
  RouteName,
  StoreStatusView,
  TunnelHandler,
  TunnelName,
} from '@ployz/protocol';
import type { RouteConflict } from '@ployz/routing';
import type { Store } from '@ployz/store';
import type { Logger } from 'pino';
import type { DataPlane } from '../dataplane/supervisor.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import type { DaemonMetrics } from '../metrics/daemon-metrics.ts';
import type { DockerEngine } from '../runtime/docker.ts';
import type { NatsLink } from '../runtime/nats-link.ts';
import type { DaemonConfig } from './config.ts';

/** What a plugin (e.g. the deploy engine) gets from the daemon. */
export interface DaemonContext {
  readonly config: DaemonConfig;
  readonly logger: Logger;
  readonly docker: DockerEngine;
  /** ployzd's metrics: the deploy engine runs each deploy through `metrics.deploy(…)`. */
  readonly metrics: DaemonMetrics;
  /** Aborted when the daemon stops. */
  readonly signal: AbortSignal;
  /**
   * Register machine RPC commands (a `defineCommands` registry and a handler for each) on this
   * machine's subjects, before the daemon starts. A name registered twice is an error.
   */
  registerCommands<R extends CommandRegistry>(commands: R, handlers: CommandHandlers<R>): void;
  /** Implement a route of @ployz/protocol's `api` table (before the daemon starts). */
  implement<N extends RouteName>(name: N, handler: RouteHandler<Api, N>): void;
  /** Implement a tunnel of @ployz/protocol's `tunnels` table (`exec`), before the daemon starts. */
  implementTunnel<N extends TunnelName>(name: N, handler: TunnelHandler<N>): void;
  /** This machine's identity, or null before `machine init`. */
  identity(): MachineIdentity | null;
  /**
   * This machine's data-plane supervisor, or null before `machine init`: the store-promote plugin
   * runs a reconcile pass after it changes the store member record.
   */
  dataPlane(): DataPlane | null;
  /** The NATS link to this machine's ployz-nats, or null before `machine init`. */
  nats(): NatsLink | null;
  /**
   * The daemon's one Store on that link (assets ensured once). Available when plugins start;
   * before that, STORE_UNAVAILABLE.
   */
  store(): Store;
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
  /** Host + path conflicts among committed releases (the deploy engine), for `status`. */
  routeConflicts?(): Promise<RouteConflict[]>;
  /** The renewal state of the `tls = "auto"` certificates (the ACME plugin), for `status`. */
  certificates?(): Promise<CertificatesStatus>;
  /** The store's replication and promotion record (the store-promote plugin), for `status`. */
  storeStatus?(): Promise<StoreStatusView>;
}
