/**
 * `Store`: every durable record of one installation + authority, over one NATS connection.
 *
 *   const store = await openStore({ servers: 'nats://127.0.0.1:4222', installation: 'local',
 *                                   authority: 'auth-default', replicas: 1 });
 *   const m = await store.machines.get('m1');           // Versioned<MachineRecord> | null
 *   await store.machines.update({ ...m.value, lifecycle: 'active' }, m.revision);
 */
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  DeployStatusRecord,
  InstanceRecord,
  InviteRecord,
  LeaseRecord,
  MachineRecord,
  PhaseRecord,
  ReleaseRecord,
  RevisionRecord,
  SubnetClaim,
  VolumeRecord,
} from '@ployz/types';
import { type EnsureAssetsResult, ensureAssets, type RoutingRetention } from './assets.ts';
import { DeployCommits } from './commits.ts';
import { type ConnectOptions, connectStore, monitor, type StoreConnection } from './connection.ts';
import { type AssetNames, assetNames, keys, type Scope, streamSubjects, validateScope } from './keys.ts';
import { Leases } from './lease.ts';
import { RecordBucket } from './record-bucket.ts';
import { RoutingEvents } from './routing-feed.ts';

export interface OpenStoreOptions extends Scope {
  /** Replica count for assets created now: 1, 3 or 5 (default 1). */
  replicas?: number;
  /** Create missing assets (default true). */
  ensure?: boolean;
  /**
   * How many routing events the stream keeps, applied to an existing stream too. Unset: a new
   * stream gets DEFAULT_ROUTING_RETENTION and an existing one keeps its limits.
   */
  routingRetention?: RoutingRetention;
  /**
   * How long a store call waits for JetStream's answer (default 5000 ms, the client's). At R3 a
   * write normally acks in milliseconds; a write without quorum is refused (STORE_NO_QUORUM)
   * after this wait plus one ≤ 1 s probe, so a replicated store may set it lower.
   */
  requestTimeoutMs?: number;
}

async function bucket(kvm: Kvm, name: string): Promise<KV> {
  return kvm.open(name, { bindOnly: true });
}

export class Store {
  readonly scope: Scope;
  readonly names: AssetNames;
  readonly connection: StoreConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly assets: EnsureAssetsResult | null;

  readonly machines: RecordBucket<typeof MachineRecord, [machine: string]>;
  readonly invites: RecordBucket<typeof InviteRecord, [nonce: string]>;
  readonly subnets: RecordBucket<typeof SubnetClaim, [subnet: string]>;
  readonly revisions: RecordBucket<
    typeof RevisionRecord,
    [namespace: string, service: string, revision: string]
  >;
  readonly releases: RecordBucket<typeof ReleaseRecord, [namespace: string, service: string]>;
  readonly instances: RecordBucket<
    typeof InstanceRecord,
    [namespace: string, service: string, instance: string]
  >;
  readonly deployStatus: RecordBucket<typeof DeployStatusRecord, [deploy: string]>;
  readonly deployPhases: RecordBucket<typeof PhaseRecord, [deploy: string, phase: string]>;
  readonly volumes: RecordBucket<typeof VolumeRecord, [namespace: string, volume: string]>;
  readonly locks: RecordBucket<typeof LeaseRecord, [key: string]>;
  readonly commits: DeployCommits;
  readonly leases: Leases;
  readonly routing: RoutingEvents;

  private constructor(init: {
    scope: Scope;
    connection: StoreConnection;
    js: JetStreamClient;
    jsm: JetStreamManager;
    kvs: Record<
      | 'machines'
      | 'invites'
      | 'subnets'
      | 'revisions'
      | 'releases'
      | 'instances'
      | 'deployStatus'
      | 'deployPhases'
      | 'volumes'
      | 'locks',
      KV
    >;
    assets: EnsureAssetsResult | null;
  }) {
    const { scope, kvs } = init;
    this.scope = scope;
    this.names = assetNames(scope);
    this.connection = init.connection;
    this.js = init.js;
    this.jsm = init.jsm;
    this.assets = init.assets;
    const n = this.names;
    this.machines = new RecordBucket({
      bucket: n.machines,
      kv: kvs.machines,
      schema: MachineRecord,
      keyOfParts: keys.machine,
      keyOfRecord: (r) => keys.machine(r.id),
    });
    this.invites = new RecordBucket({
      bucket: n.invites,
      kv: kvs.invites,
      schema: InviteRecord,
      keyOfParts: keys.invite,
      keyOfRecord: (r) => keys.invite(r.nonce),
    });
    this.subnets = new RecordBucket({
      bucket: n.subnets,
      kv: kvs.subnets,
      schema: SubnetClaim,
      keyOfParts: keys.subnet,
      keyOfRecord: (r) => keys.subnet(r.subnet),
    });
    this.revisions = new RecordBucket({
      bucket: n.revisions,
      kv: kvs.revisions,
      schema: RevisionRecord,
      keyOfParts: keys.revision,
      keyOfRecord: (r) => keys.revision(r.namespace, r.service, r.id),
    });
    this.releases = new RecordBucket({
      bucket: n.releases,
      kv: kvs.releases,
      schema: ReleaseRecord,
      keyOfParts: keys.release,
      keyOfRecord: (r) => keys.release(r.namespace, r.service),
    });
    this.instances = new RecordBucket({
      bucket: n.instances,
      kv: kvs.instances,
      schema: InstanceRecord,
      keyOfParts: keys.instance,
      keyOfRecord: (r) => keys.instance(r.namespace, r.service, r.id),
    });
    this.deployStatus = new RecordBucket({
      bucket: n.deployStatus,
      kv: kvs.deployStatus,
      schema: DeployStatusRecord,
      keyOfParts: keys.deployStatus,
      keyOfRecord: (r) => keys.deployStatus(r.deploy_id),
    });
    this.deployPhases = new RecordBucket({
      bucket: n.deployPhases,
      kv: kvs.deployPhases,
      schema: PhaseRecord,
      keyOfParts: keys.deployPhase,
      keyOfRecord: (r) => keys.deployPhase(r.deploy_id, r.phase),
    });
    this.volumes = new RecordBucket({
      bucket: n.volumes,
      kv: kvs.volumes,
      schema: VolumeRecord,
      keyOfParts: keys.volume,
      keyOfRecord: (r) => keys.volume(r.namespace, r.name),
    });
    // Lease keys are already full keys (`cp.lock.deploy.<ns>`, see keys.deployLock).
    this.locks = new RecordBucket({
      bucket: n.locks,
      kv: kvs.locks,
      schema: LeaseRecord,
      keyOfParts: (key: string) => key,
      keyOfRecord: (r) => r.key,
    });
    this.commits = new DeployCommits(this.js, this.jsm, scope, n.deployCommits);
    this.leases = new Leases(this.locks);
    this.routing = new RoutingEvents({
      nc: init.connection.nc,
      js: this.js,
      jsm: this.jsm,
      stream: n.routingEvents,
      subject: streamSubjects(scope).routingEvents,
      sources: {
        machines: this.machines,
        revisions: this.revisions,
        releases: this.releases,
        instances: this.instances,
      },
    });
  }

  get nc(): NatsConnection {
    return this.connection.nc;
  }

  /** The deploy lease key of a namespace: `cp.lock.deploy.<ns>`. */
  deployLockKey(namespace: string): string {
    return keys.deployLock(namespace);
  }

  /** Opens the store on an existing connection; `close()` drains that connection. */
  static async fromConnection(
    nc: NatsConnection | StoreConnection,
    options: OpenStoreOptions,
  ): Promise<Store> {
    const scope = validateScope({ installation: options.installation, authority: options.authority });
    const connection = 'nc' in nc ? nc : monitor(nc);
    const assets =
      options.ensure === false
        ? null
        : await ensureAssets(connection.nc, scope, options.replicas ?? 1, options.routingRetention);
    const timeout = options.requestTimeoutMs === undefined ? {} : { timeout: options.requestTimeoutMs };
    const js = jetstream(connection.nc, timeout);
    const jsm = await jetstreamManager(connection.nc, timeout);
    // @nats-io/kv carries its own copy of @nats-io/jetstream: the client is the same at runtime.
    const kvm = new Kvm(jetstream(connection.nc, timeout) as unknown as ConstructorParameters<typeof Kvm>[0]);
    const names = assetNames(scope);
    const [
      machines,
      invites,
      subnets,
      revisions,
      releases,
      instances,
      deployStatus,
      deployPhases,
      volumes,
      locks,
    ] = await Promise.all([
      bucket(kvm, names.machines),
      bucket(kvm, names.invites),
      bucket(kvm, names.subnets),
      bucket(kvm, names.revisions),
      bucket(kvm, names.releases),
      bucket(kvm, names.instances),
      bucket(kvm, names.deployStatus),
      bucket(kvm, names.deployPhases),
      bucket(kvm, names.volumes),
      bucket(kvm, names.locks),
    ]);
    return new Store({
      scope,
      connection,
      js,
      jsm,
      assets,
      kvs: {
        machines,
        invites,
        subnets,
        revisions,
        releases,
        instances,
        deployStatus,
        deployPhases,
        volumes,
        locks,
      },
    });
  }

  /** Drains and closes the connection. */
  close(): Promise<void> {
    return this.connection.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Connects (reconnecting forever), creates missing assets and returns the store. */
export async function openStore(options: OpenStoreOptions & ConnectOptions): Promise<Store> {
  const connection = await connectStore(options);
  try {
    return await Store.fromConnection(connection, options);
  } catch (err) {
    await connection.close();
    throw err;
  }
}
