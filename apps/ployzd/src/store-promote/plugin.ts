/**
 * The store-promotion plugin (issue 19): serves `storagePromotePlan` — reads what would move
 * (@ployz/store `planMigration`, read only), probes each named machine now (ping round trip from
 * this machine, its data plane's health from its `status`) and returns the pure plan
 * (`plan.ts`) with the last promotion record; and the store part of `status` (replicas, leader,
 * each asset current or lagging, the promotion record). Applying (`--yes`) is not wired yet: the
 * store-level switch-over is `promoteStore`, the cluster member `member.ts`.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  formatHostPort,
  type MachineCommands,
  NATS_STORE_CLIENT_PORT,
  RpcClient,
  type StoragePromotePlanView,
  type StoragePromoteRequest,
  type StoragePromoteResult,
  type StoreStatusView,
  storeMemberCommands,
} from '@ployz/protocol';
import {
  type PromotionRecord,
  planMigration,
  readPromotion,
  type Store,
  storeReplication,
} from '@ployz/store';
import { type MachineRecord, PloyzError } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/context.ts';
import { machineCommands } from '../daemon/machine-commands.ts';
import { networkingAddress } from '../dataplane/component-spec.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { ployzdSeedSource } from '../machine/nats-credentials.ts';
import { switchesItself } from './apply.ts';
import {
  type MemberHost,
  removeStoreMemberContainer,
  startStoreMember,
  switchToStoreMembers,
} from './member-commands.ts';
import { readStoreLeaf } from './member-state.ts';
import { networkingNetns, probeStorePeers, type StorePeer } from './peers.ts';
import { type MachineProbe, type PromotionPlan, planPromotion } from './plan.ts';
import { runPromotion } from './runner.ts';

const PING_TIMEOUT_MS = 1500;
const PINGS = 3;
const STATUS_TIMEOUT_MS = 3000;

async function probe(rpc: RpcClient<MachineCommands>, machine: string): Promise<MachineProbe> {
  // The round trip is the best of PINGS: one sample on a busy machine measures its scheduler
  // (CI saw 191 ms on a veth link), the link's latency is the lowest one.
  let best = Number.POSITIVE_INFINITY;
  try {
    for (let i = 0; i < PINGS; i++) {
      const started = performance.now();
      await rpc.call(machine, 'ping', null, { timeoutMs: PING_TIMEOUT_MS });
      best = Math.min(best, performance.now() - started);
    }
  } catch (err) {
    return {
      reachable: false,
      rttMs: null,
      healthy: false,
      problem: err instanceof PloyzError ? err.code : String(err),
    };
  }
  const rttMs = Math.round(best * 10) / 10;
  try {
    const status = await rpc.call(machine, 'status', null, { timeoutMs: STATUS_TIMEOUT_MS });
    const bad = status.components.filter((c) => !c.running || c.health === 'unhealthy');
    return {
      reachable: true,
      rttMs,
      healthy: bad.length === 0 && status.components.length > 0,
      ...(bad.length > 0
        ? {
            problem: bad.map((c) => `${c.container_name} ${c.running ? c.health : 'not running'}`).join(', '),
          }
        : {}),
    };
  } catch (err) {
    return {
      reachable: true,
      rttMs,
      healthy: false,
      problem: `status: ${err instanceof PloyzError ? err.code : String(err)}`,
    };
  }
}

/**
 * The machine holding the standalone store: JetStream names no leader for a non-clustered stream,
 * so it is this machine unless its ployz-nats is a leaf of hubs (ADR 0013), then the hub's record.
 */
function standaloneStorage(identity: MachineIdentity, records: readonly MachineRecord[]): string | null {
  const hubs = identity.nats_hubs ?? [];
  if (hubs.length === 0) return identity.machine_id;
  return records.find((r) => hubs.includes(r.overlay_ip))?.id ?? null;
}

interface PlannedNow {
  plan: PromotionPlan;
  records: MachineRecord[];
  identity: MachineIdentity;
  source: NatsConnection;
}

/** The plan as of now: what moves, each named machine probed over the mesh. Changes nothing. */
async function planNow(ctx: DaemonContext, input: StoragePromoteRequest): Promise<PlannedNow> {
  const identity = ctx.identity();
  const nc = ctx.nats()?.connection;
  if (identity === null || nc === null || nc === undefined) {
    throw new PloyzError('ENGINE_NOT_READY', 'ployzd is not connected to its store yet; see ployzctl status');
  }
  const store = ctx.store();
  const commits = await store.jsm.streams.info(store.names.deployCommits);
  const rpc = new RpcClient({ nc, scope: store.scope, commands: machineCommands });
  const records = (await store.machines.list()).map((v) => v.value);
  const known = new Set(records.map((r) => r.id));
  const probes: Record<string, MachineProbe> = {};
  await Promise.all(
    [...new Set(input.machines)]
      .filter((m) => known.has(m))
      .map(async (m) => {
        probes[m] = await probe(rpc, m);
      }),
  );
  const migration = await planMigration(store.nc, store.scope);
  const plan = planPromotion({
    currentReplicas: commits.config.num_replicas,
    requestedReplicas: input.replicas,
    currentStorage: commits.cluster?.leader ?? standaloneStorage(identity, records) ?? identity.machine_id,
    machines: input.machines,
    records,
    probes,
    assets: migration.assets.map((a) => ({
      asset: a.asset,
      kind: a.kind,
      messages: a.messages,
      bytes: a.bytes,
      lastId: a.lastId,
    })),
    ...(input.rtt_bound_ms === undefined ? {} : { rttBoundMs: input.rtt_bound_ms }),
  });
  return { plan, records, identity, source: nc };
}

function planView(plan: PromotionPlan, promotion: PromotionRecord | null): StoragePromotePlanView {
  return {
    from: plan.from,
    to: plan.to,
    current_storage: plan.currentStorage,
    members: plan.members.map((m) => ({ ...m })),
    regions: plan.regions,
    rtt_bound_ms: plan.rttBoundMs,
    assets: plan.assets.map((a) => ({ ...a })),
    messages: plan.messages,
    bytes: plan.bytes,
    checks: plan.checks.map((c) => ({ ...c })),
    refusal: plan.refusal,
    promotion,
  };
}

/** What the member commands act on: this machine's state, engine and data plane. */
function memberHost(ctx: DaemonContext): MemberHost {
  const identity = ctx.identity();
  const dataPlane = ctx.dataPlane();
  if (identity === null || dataPlane === null) {
    throw new PloyzError('ENGINE_NOT_READY', 'this machine is not initialised yet; see ployzctl status');
  }
  return {
    stateDir: ctx.config.stateDir,
    containerPrefix: ctx.config.containerPrefix,
    machineId: identity.machine_id,
    installation: identity.installation,
    docker: ctx.docker,
    dataPlane,
  };
}

/** How often a machine checks whether it should switch over by itself. */
const SELF_SWITCH_EVERY_MS = 5_000;

/**
 * The machines holding the store now: the three members once a promotion finished (this store's
 * record `done`, or `switched` on an old store), else the standalone store's machine.
 */
export async function storageMachines(store: Store, identity: MachineIdentity): Promise<string[]> {
  const record = await readPromotion(store.nc, store.scope);
  if (record !== null && (record.phase === 'done' || record.phase === 'switched')) return [...record.members];
  const standalone = standaloneStorage(
    identity,
    (await store.machines.list()).map((v) => v.value),
  );
  return standalone === null ? [] : [standalone];
}

/** `status` does not wait longer than this for the store's replication. */
const STATUS_READ_MS = 2_000;

export function storePromotePlugin(): DaemonPlugin {
  let context: DaemonContext | null = null;
  let running = false;
  let timer: NodeJS.Timeout | null = null;
  let checking = false;
  return {
    name: 'store-promote',
    async start(ctx: DaemonContext) {
      context = ctx;
      // A machine the coordinator could not reach during the switch-over switches by itself.
      const check = async () => {
        const identity = ctx.identity();
        const dataPlane = ctx.dataPlane();
        if (checking || running || identity === null || dataPlane === null || ctx.nats()?.connection == null)
          return;
        checking = true;
        try {
          const store = ctx.store();
          const hasLeaf = (await readStoreLeaf(ctx.config.stateDir)) !== null;
          if (hasLeaf) return;
          const record = await readPromotion(store.nc, store.scope);
          if (record === null || !switchesItself(record, hasLeaf, new Date())) return;
          const records = new Map((await store.machines.list()).map((v) => [v.value.id, v.value]));
          const members = record.members.map((id) => ({
            machine_id: id,
            overlay_ip: records.get(id)?.overlay_ip ?? '',
          }));
          if (members.some((m) => m.overlay_ip === '')) return;
          ctx.logger.info(
            { run: record.run, members: record.members },
            'switching over to the store members by itself',
          );
          await switchToStoreMembers(
            memberHost(ctx),
            { members, run: record.run },
            { defer: false, log: (m, e) => ctx.logger.warn({ err: e }, m) },
          );
        } catch (err) {
          ctx.logger.debug({ err }, 'store switch-over check failed');
        } finally {
          checking = false;
        }
      };
      timer = setInterval(() => void check(), SELF_SWITCH_EVERY_MS);
      timer.unref();
    },
    async stop() {
      if (timer !== null) clearInterval(timer);
      timer = null;
    },
    async storeStatus(): Promise<StoreStatusView> {
      if (context === null) throw new PloyzError('ENGINE_NOT_READY', 'the store is not reached yet');
      const store = context.store();
      // Probed beside the read, and kept when the read fails: with the quorum gone, the
      // unreachable members are what the operator needs to see.
      // (A switch-over record that cannot be read is reported by the data plane, not here.)
      const ctx = context;
      const peers = readStoreLeaf(ctx.config.stateDir)
        .then(async (leaf) =>
          leaf === null ? [] : probeStorePeers(leaf, { netns: await networkingNetns(ctx).catch(() => null) }),
        )
        .catch((): StorePeer[] => []);
      const read = Promise.all([
        storeReplication(store.nc, store.scope),
        readPromotion(store.nc, store.scope),
      ]);
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`the store did not answer in ${STATUS_READ_MS} ms`)),
          STATUS_READ_MS,
        );
      });
      let replication: Awaited<typeof read>[0];
      let promotion: Awaited<typeof read>[1];
      try {
        [replication, promotion] = await Promise.race([read, late]);
      } catch (err) {
        clearTimeout(timer);
        const reached = await peers;
        if (reached.length === 0) throw err;
        return {
          replicas: reached.length,
          leader: null,
          assets: [],
          promotion: null,
          peers: reached,
          error: err instanceof Error ? err.message : String(err),
        };
      }
      try {
        const identity = context.identity();
        const standalone =
          replication.replicas === 1 && identity !== null
            ? standaloneStorage(
                identity,
                (await store.machines.list()).map((v) => v.value),
              )
            : null;
        const leader = replication.leader ?? standalone;
        return {
          ...replication,
          leader,
          assets: replication.assets.map((a) => ({
            ...a,
            leader: a.leader ?? standalone,
            current: a.leader || !standalone ? a.current : [standalone],
          })),
          promotion,
          peers: await peers,
          error: null,
        };
      } finally {
        clearTimeout(timer);
      }
    },
    register(ctx: DaemonContext) {
      const host = () => memberHost(ctx);
      ctx.registerCommands(storeMemberCommands, {
        store_member_start: async (body) => {
          const out = await startStoreMember(host(), body);
          ctx.logger.info(
            { members: body.members.map((m) => m.machine_id), run: body.run, container_id: out.container_id },
            'store member started',
          );
          return out;
        },
        store_member_remove: async () => {
          const out = await removeStoreMemberContainer(host());
          ctx.logger.info({ removed: out.removed }, 'store member removed');
          return out;
        },
        store_switch: async (body) => {
          const out = await switchToStoreMembers(host(), body, {
            defer: true,
            log: (m, e) => ctx.logger.warn({ err: e }, m),
          });
          ctx.logger.info(
            { run: body.run, members: body.members.map((m) => m.machine_id), switched: out.switched },
            'switching over to the store members',
          );
          return out;
        },
      });
      ctx.implement('storagePromotePlan', async (input): Promise<StoragePromotePlanView> => {
        const { plan } = await planNow(ctx, input);
        const promotion = await readPromotion(ctx.store().nc, ctx.store().scope);
        return planView(plan, promotion);
      });
      ctx.implement('storagePromoteApply', async (input, { emit }): Promise<StoragePromoteResult> => {
        if (running) {
          throw new PloyzError('STORE_PROMOTING', 'a promotion is already running on this machine');
        }
        running = true;
        try {
          const { plan, records, identity, source } = await planNow(ctx, input);
          const member = host();
          const started = Date.now();
          const result = await runPromotion({
            coordinator: identity.machine_id,
            scope: ctx.store().scope,
            source,
            records,
            plan,
            memberUrl: `nats://${formatHostPort({ host: networkingAddress(identity.subnet), port: NATS_STORE_CLIENT_PORT })}`,
            nkeySeed: ployzdSeedSource(ctx.config.stateDir),
            switchLocal: (body) =>
              switchToStoreMembers(member, body, {
                defer: false,
                log: (m, e) => ctx.logger.warn({ err: e }, m),
              }),
            emit: (p) => {
              ctx.logger.info({ step: p.step, machine: p.machine, detail: p.detail }, 'store promotion');
              emit(p);
            },
            signal: ctx.signal,
          });
          ctx.logger.info(
            { run: result.run, switched: result.switched, pending: result.pending, ms: Date.now() - started },
            'store promoted to 3 replicas',
          );
          return result;
        } finally {
          running = false;
        }
      });
    },
  };
}
