/**
 * The adopt-first supervisor: builds the desired specs, observes the engine, plans, executes, and
 * answers "what state is each component in, why, and since when" from the last reconcile plus a
 * live inspection. It only ever touches containers holding a component's name with this
 * installation's labels; never workloads, never foreign containers.
 */
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NATS_STORE_LEAF_PORT, PLOYZ_VERSION, releaseImageRef } from '@ployz/protocol';
import { isPloyzError, PloyzError } from '@ployz/types';
import { acmeFeedDir, makeAcmeFeedDirs } from '../acme/gateway-feed.ts';
import type { DaemonConfig } from '../daemon/config.ts';
import { writeAtomic } from '../machine/atomic-write.ts';
import { type MachineIdentity, natsDataDir, wireguardDir } from '../machine/identity.ts';
import { ensureLeafSecret, leafSecretPath, readLeafSecret } from '../machine/leaf-secret.ts';
import { ensureNatsCredentials, natsConfDir, natsSeedMountDir } from '../machine/nats-credentials.ts';
import type { DockerEngine } from '../runtime/docker.ts';
import { STORE_CONFIG_NAME, storeMemberSettings, storeMemberSpec } from '../store-promote/member.ts';
import { readStoreLeaf, readStoreMember, storeMemberDataDir } from '../store-promote/member-state.ts';
import { settleBeside } from './beside.ts';
import {
  COMPONENTS,
  type ComponentName,
  type CoreComponentName,
  type DataPlaneInput,
  type DesiredComponent,
  desiredComponents,
  hostBridgeAddress,
  natsServerSettings,
  PARENT_COMPONENT,
  STORE_MEMBER_COMPONENT,
  specHash,
  systemLabels,
} from './component-spec.ts';
import { executePlan, type ReconcileResult } from './executor.ts';
import { type PlannedAction, planReconcile, repairDecision, stoppedTimes } from './plan.ts';
import { type PulledImage, type PullProgress, pullImage } from './pull.ts';

export type ComponentState =
  | 'adopted'
  | 'created'
  | 'recreated'
  | 'missing'
  | 'unhealthy'
  | 'collision'
  | 'blocked'
  | 'failed'
  | 'pending';

export interface ComponentStatus {
  component: ComponentName;
  container_name: string;
  container_id: string | null;
  state: ComponentState;
  reason: string | null;
  detail: string | null;
  since: string | null;
  running: boolean;
  health: string;
  /** The image the running container was created from, and its version label (null: none). */
  image_id: string | null;
  version: string | null;
  /** The image this ployzd expects (its --image-<component>, resolved at the last pass). */
  expected_image_id: string | null;
  /** Set when the running image is not the expected one: what runs, what is expected. */
  skew: string | null;
}

export interface ReconcileSummary {
  at: string;
  adopted: number;
  created: number;
  recreated: number;
  problems: number;
  error: { code: string; message: string } | null;
}

/** The registry the data-plane images come from: the daemon's config, else the machine's. */
export function imageRegistryOf(config: DaemonConfig, identity: MachineIdentity): string | null {
  return config.imageRegistry ?? identity.image_registry ?? null;
}

/**
 * Each component's image (docs/adr/0017-image-versions.md): `--image-<component>` as given, else
 * `<registry>/ployz/<component>:<PLOYZ_VERSION>`, else the local build `ployz/<component>:latest`.
 * `pull` says whether a missing one is pulled, and at which version it must be.
 */
export function imagesOf(
  config: DaemonConfig,
  identity: MachineIdentity,
): Record<CoreComponentName, { ref: string; pull: { expectedVersion: string | null } | null }> {
  const registry = imageRegistryOf(config, identity);
  const one = (component: CoreComponentName, given: string | undefined) => {
    if (given !== undefined) {
      const fromRegistry = registry !== null && given.startsWith(`${registry}/`);
      return { ref: given, pull: fromRegistry ? { expectedVersion: null } : null };
    }
    return {
      ref: releaseImageRef(component, registry),
      pull: registry === null ? null : { expectedVersion: PLOYZ_VERSION },
    };
  };
  return {
    networking: one('networking', config.imageNetworking),
    nats: one('nats', config.imageNats),
    gateway: one('gateway', config.imageGateway),
    dns: one('dns', config.imageDns),
  };
}

/** What the data plane reports about its images: a pull's start, its progress, its end. */
export type DataPlaneImageEvent =
  | { kind: 'pull_start'; component: ComponentName; image: string }
  | ({ kind: 'pull_progress'; component: ComponentName } & PullProgress)
  | ({ kind: 'pulled'; component: ComponentName } & PulledImage);

/** The uid the ployz/nats image runs as (images/nats/Dockerfile). */
const NATS_UID = 10002;

export class DataPlane {
  #results: ReconcileResult[] = [];
  #summary: ReconcileSummary | null = null;
  #running: Promise<ReconcileSummary> | null = null;
  /** Components earlier repair checks found stopped, and since when (ms). */
  #stoppedSince = new Map<ComponentName, number>();
  #setAsideLeft: string[] = [];
  /** The image id each component should run, from the last pass's desired specs. */
  #expectedImages = new Map<ComponentName, string>();
  /** Whether the last pass wanted the store cluster member (this machine holds a member record). */
  #storeMember = false;

  readonly config: DaemonConfig;
  readonly engine: DockerEngine;
  readonly identity: MachineIdentity;
  readonly log: (action: PlannedAction | ReconcileResult) => void;
  readonly onImage: (event: DataPlaneImageEvent) => void;

  constructor(
    config: DaemonConfig,
    engine: DockerEngine,
    identity: MachineIdentity,
    log: (action: PlannedAction | ReconcileResult) => void = () => {},
    onImage: (event: DataPlaneImageEvent) => void = () => {},
  ) {
    this.config = config;
    this.engine = engine;
    this.identity = identity;
    this.log = log;
    this.onImage = onImage;
  }

  /** The components this machine runs now: the core ones, and the store member while it is one. */
  components(): ComponentName[] {
    return this.#storeMember ? [...COMPONENTS, STORE_MEMBER_COMPONENT] : [...COMPONENTS];
  }

  names(): string[] {
    return this.components().map((c) => `${this.config.containerPrefix}${c}`);
  }

  /**
   * The image id of a component: the local image, or — from a registry, missing here — pulled and
   * verified first (pull.ts). Runs before the plan: nothing is replaced until every image is here.
   */
  async #imageId(
    component: ComponentName,
    image: ReturnType<typeof imagesOf>[CoreComponentName],
  ): Promise<string> {
    try {
      return await this.engine.imageId(image.ref);
    } catch (error) {
      if (image.pull === null || !isPloyzError(error) || error.code !== 'IMAGE_MISSING') throw error;
    }
    this.onImage({ kind: 'pull_start', component, image: image.ref });
    const pulled = await pullImage(this.engine.docker, image.ref, {
      expectedVersion: image.pull.expectedVersion,
      onProgress: (p) => this.onImage({ kind: 'pull_progress', component, ...p }),
    });
    this.onImage({ kind: 'pulled', component, ...pulled });
    return pulled.id;
  }

  async desired(): Promise<DesiredComponent[]> {
    const resolved = imagesOf(this.config, this.identity);
    const images = {
      networking: resolved.networking.ref,
      nats: resolved.nats.ref,
      gateway: resolved.gateway.ref,
      dns: resolved.dns.ref,
    };
    // One after the other: the edge apps share their base layers, pulled once.
    const imageIds = {
      networking: await this.#imageId('networking', resolved.networking),
      nats: await this.#imageId('nats', resolved.nats),
      gateway: await this.#imageId('gateway', resolved.gateway),
      dns: await this.#imageId('dns', resolved.dns),
    };
    const scope = { installation: this.identity.installation, authority: this.identity.authority };
    await ensureNatsCredentials(this.config.stateDir, scope);
    const input: DataPlaneInput = {
      installation: this.identity.installation,
      authority: this.identity.authority,
      machineId: this.identity.machine_id,
      overlayIp: this.identity.overlay_ip,
      overlayPrefix: this.config.overlayPrefix,
      subnet: this.identity.subnet,
      containerPrefix: this.config.containerPrefix,
      bridgeName: this.config.bridgeName,
      gatewayHostPort: this.config.gatewayPort,
      gatewayHttpsHostPort: this.config.gatewayHttpsPort,
      gatewayHostIp: this.config.gatewayHostIp,
      wireguardPort: this.config.wireguardPort,
      wireguardKeyDir: wireguardDir(this.config.stateDir),
      natsDataDir: natsDataDir(this.config.stateDir),
      acmeDir: acmeFeedDir(this.config.stateDir),
      natsAuth: {
        confDir: natsConfDir(this.config.stateDir),
        gatewaySeedDir: natsSeedMountDir(this.config.stateDir, 'gateway'),
        dnsSeedDir: natsSeedMountDir(this.config.stateDir, 'dns'),
      },
      natsMesh: await this.#natsMesh(),
      images,
      imageIds,
      extraEnv: this.config.componentEnv,
    };
    // It holds the leaf secret: readable by the nats image's user only.
    await writeAtomic(
      join(natsConfDir(this.config.stateDir), 'nats.conf'),
      natsServerSettings(input),
      0o600,
      NATS_UID,
    );
    const core = desiredComponents(input);
    const member = await this.#storeMemberDesired(input);
    this.#storeMember = member !== null;
    return member === null ? core : [...core, member];
  }

  /**
   * The store cluster member (ADR 0020) while this machine holds a member record: its settings
   * beside ployz-nats's (the same auth file), its own data directory, the nats image.
   */
  async #storeMemberDesired(input: DataPlaneInput): Promise<DesiredComponent | null> {
    const record = await readStoreMember(this.config.stateDir);
    if (record === null || input.natsMesh === null) return null;
    const confDir = natsConfDir(this.config.stateDir);
    const member = {
      installation: input.installation,
      authority: input.authority,
      machineId: input.machineId,
      members: record.members.map((m) => ({ machineId: m.machine_id, overlayIp: m.overlay_ip })),
      leafSecret: input.natsMesh.leafSecret,
    };
    const spec = storeMemberSpec({
      ...member,
      containerPrefix: input.containerPrefix,
      image: input.images.nats,
      imageId: input.imageIds.nats,
      dataDir: storeMemberDataDir(this.config.stateDir),
      confDir,
      labels: systemLabels(input, STORE_MEMBER_COMPONENT),
    });
    // It holds the leaf secret and the route password: readable by the nats image's user only.
    await writeAtomic(join(confDir, STORE_CONFIG_NAME), storeMemberSettings(member), 0o600, NATS_UID);
    await mkdir(storeMemberDataDir(this.config.stateDir), { recursive: true, mode: 0o700 });
    await chown(storeMemberDataDir(this.config.stateDir), NATS_UID, NATS_UID);
    return { spec, configHash: specHash(spec), parent: PARENT_COMPONENT[STORE_MEMBER_COMPONENT] };
  }

  async #natsMesh(): Promise<DataPlaneInput['natsMesh']> {
    // After a promotion's commit point this machine's ployz-nats is a leaf of the store members
    // (ADR 0020), the storage machine's too: the standalone JetStream stops with the switch.
    const switched = await readStoreLeaf(this.config.stateDir);
    if (switched !== null) {
      // A member's machine tries its own member first (same netns: never cut from it).
      const own = switched.members.filter((m) => m.machine_id === this.identity.machine_id);
      const others = switched.members.filter((m) => m.machine_id !== this.identity.machine_id);
      return {
        leafSecret: await this.#leafSecret(),
        hubs: [...own, ...others].map((m) => m.overlay_ip),
        hubPort: NATS_STORE_LEAF_PORT,
        ordered: own.length > 0,
      };
    }
    const hubs = this.identity.nats_hubs ?? null;
    return { leafSecret: await this.#leafSecret(), hubs };
  }

  /** The installation's leaf secret: the storage machine makes it, a member got it at join. */
  async #leafSecret(): Promise<string> {
    if ((this.identity.nats_hubs ?? null) === null) return ensureLeafSecret(this.config.stateDir);
    const leafSecret = await readLeafSecret(this.config.stateDir);
    if (leafSecret === null) {
      throw new PloyzError(
        'STORE_CORRUPT',
        `${leafSecretPath(this.config.stateDir)} is missing: this machine joined but holds no leaf secret, so its ployz-nats cannot reach the store. Copy it from a member's state directory (0600)`,
      );
    }
    return leafSecret;
  }

  /** One adopt-first pass. Concurrent callers share the pass in flight. */
  reconcile(): Promise<ReconcileSummary> {
    this.#running ??= this.#reconcile().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #reconcile(): Promise<ReconcileSummary> {
    const at = new Date().toISOString();
    try {
      await this.engine.ping();
      const desired = await this.desired();
      this.#expectedImages = new Map(desired.map((d) => [d.spec.component, d.spec.imageId]));
      await chown(natsDataDir(this.config.stateDir), NATS_UID, NATS_UID).catch(() => {});
      // Made before the gateway mounts it (Docker would create a missing one, as root, 0755 too).
      await makeAcmeFeedDirs(acmeFeedDir(this.config.stateDir));
      await this.engine.ensureBridge({
        name: this.config.bridgeName,
        subnet: this.identity.subnet,
        gateway: hostBridgeAddress(this.identity.subnet),
        installation: this.identity.installation,
      });
      // A replacement a dead daemon left half-way is finished or undone first (beside.ts).
      for (const r of await settleBeside(this.engine, desired, this.identity.installation)) this.log(r);
      const observed = await this.engine.observe(this.names());
      const plan = planReconcile({ installation: this.identity.installation, desired, observed });
      this.#results = await executePlan(this.engine, desired, plan, { onAction: (a) => this.log(a) });
      for (const r of this.#results) this.log(r);
      await this.#sweepSetAside();
      const count = (o: ReconcileResult['outcome']) => this.#results.filter((r) => r.outcome === o).length;
      this.#summary = {
        at,
        adopted: count('adopted'),
        created: count('created'),
        recreated: count('recreated'),
        problems: count('collision') + count('blocked') + count('failed'),
        error: null,
      };
    } catch (error) {
      const e = isPloyzError(error)
        ? error
        : new PloyzError('INTERNAL', error instanceof Error ? error.message : String(error));
      this.#summary = {
        at,
        adopted: 0,
        created: 0,
        recreated: 0,
        problems: 0,
        error: { code: e.code, message: e.message },
      };
    }
    return this.#summary;
  }

  /**
   * Containers an earlier pass set aside (their removal failed) are removed once the engine can;
   * the names still there are kept for status.
   */
  async #sweepSetAside(): Promise<void> {
    this.#setAsideLeft = await this.engine.sweepSetAside(this.identity.installation);
  }

  /** System containers set aside after a failed removal that the engine could not delete yet. */
  setAside(): readonly string[] {
    return this.#setAsideLeft;
  }

  /**
   * The live repair check, between full passes (`repairDecision` says when): a full adopt-first
   * pass, logged and reported in status like any other. Returns that pass's summary, or null when
   * nothing needed repair.
   */
  async repair(): Promise<ReconcileSummary | null> {
    if (this.#running !== null) return null;
    const desired = await this.desired();
    const observed = await this.engine.observe(this.names());
    const plan = planReconcile({ installation: this.identity.installation, desired, observed });
    // A stopped component is repaired only once it has been seen stopped for STOPPED_GRACE_MS.
    const first = repairDecision(plan, new Set());
    const times = stoppedTimes(this.#stoppedSince, first.stopped, Date.now());
    const decision = repairDecision(plan, times.due);
    this.#stoppedSince = decision.repair ? new Map() : times.since;
    return decision.repair ? this.reconcile() : null;
  }

  /** Makes ployz-nats re-read its config (public keys, permissions): SIGHUP, no restart. */
  async reloadNats(): Promise<void> {
    await this.engine.signal(`${this.config.containerPrefix}nats`, 'SIGHUP');
  }

  summary(): ReconcileSummary | null {
    return this.#summary;
  }

  #repairHint(): string {
    const every = this.config.repairIntervalMs;
    return every === 0
      ? 'live repair is off (--repair-interval-ms 0): restart ployzd to repair it'
      : `ployzd repairs it within ${Math.ceil(every / 1000)} s`;
  }

  /** Last reconcile outcome + what runs right now. */
  async status(): Promise<ComponentStatus[]> {
    const out: ComponentStatus[] = [];
    // One pass's results for every component: a pass that ends while this awaits the engine must
    // not mix its outcomes with the previous pass's.
    const results = this.#results;
    const expectedImages = this.#expectedImages;
    for (const component of this.components()) {
      const name = `${this.config.containerPrefix}${component}`;
      const result = results.find((r) => r.component === component);
      const live = await this.engine.inspectByName(name).catch(() => null);
      const base: ComponentStatus = {
        component,
        container_name: name,
        container_id: result?.containerId ?? null,
        state: 'pending',
        reason: result?.reason ?? null,
        detail: result?.detail ?? null,
        since: result?.at ?? null,
        running: false,
        health: 'none',
        ...versions(live, expectedImages.get(component) ?? null),
      };
      if (!result) {
        out.push({ ...base, detail: 'not reconciled yet' });
        continue;
      }
      if (result.outcome === 'collision' || result.outcome === 'blocked' || result.outcome === 'failed') {
        out.push({ ...base, state: result.outcome });
        continue;
      }
      if (!live || live.id !== result.containerId) {
        out.push({
          ...base,
          state: 'missing',
          reason: 'missing',
          detail: live
            ? `${name} is now a different container (${live.id.slice(0, 12)}); ${this.#repairHint()}`
            : `${name} was removed after the last reconcile; ${this.#repairHint()}`,
        });
        continue;
      }
      const since = result.outcome === 'adopted' ? (live.startedAt ?? result.at) : result.at;
      const unhealthy = !live.running || live.health === 'unhealthy';
      out.push({
        ...base,
        state: unhealthy ? 'unhealthy' : result.outcome,
        reason: unhealthy ? (live.running ? 'healthcheck_failing' : 'not_running') : result.reason,
        since,
        running: live.running,
        health: live.health,
      });
    }
    return out;
  }
}

const short = (id: string) => id.replace(/^sha256:/, '').slice(0, 12);

/** What runs against what this ployzd expects (`ployzctl status` shows the skew). */
function versions(
  live: { imageId?: string; version?: string | null } | null,
  expected: string | null,
): Pick<ComponentStatus, 'image_id' | 'version' | 'expected_image_id' | 'skew'> {
  const imageId = live?.imageId ?? null;
  const skew =
    imageId !== null && expected !== null && imageId !== expected
      ? `runs image ${short(imageId)}, this ployzd expects ${short(expected)}`
      : null;
  return { image_id: imageId, version: live?.version ?? null, expected_image_id: expected, skew };
}
