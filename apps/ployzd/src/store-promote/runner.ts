/**
 * The promotion runner (`ployzctl machine storage promote --replicas 3 <m1> <m2> <m3> --yes`,
 * issue 19): executes `applySteps` (apply.ts) on the coordinator — the machine whose ployzd was
 * asked, one of the three members.
 *
 * - record, no deploys, migrate, verify, `switched`, freeze, catch-up: @ployz/store `promoteStore`
 *   on the old store (this machine's ployz-nats connection) and the target;
 * - its `prepare`: `store_member_start` on each member over the mesh (the coordinator's first,
 *   each retried while the machine does not answer), then a connection to this machine's own
 *   member (`ployz-nats-store`, the bridge address `.2`, port 4223, with ployzd's NKey) and a wait
 *   until the cluster places a three-replica stream (a metadata leader needs two members, a
 *   placement all three);
 * - its `switchOver`: `store_switch` on every active machine in `applySteps`' order, each then
 *   waited for until it answers a ping through the members (its ployzd's subscriptions came back
 *   through its new leaf connection); the coordinator switches itself, locally, last. A machine
 *   that does not answer is reported `pending`: it switches by itself once it reads the record.
 *
 * A failure is classified by `failureOutcome` at the step it happened: before the commit point the
 * members this run started are removed (their copy is discarded, the old store never changed);
 * from `switched` on nothing is removed and the next `promote` finishes the run.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import {
  type MachineCommands,
  RpcClient,
  type StoragePromoteProgress,
  type StoragePromoteResult,
  type StoreMemberCommands,
  type StoreSwitchRequest,
  storeMemberCommands,
} from '@ployz/protocol';
import {
  connectStore,
  type MigrationProgress,
  type NkeySeedSource,
  promoteStore,
  readPromotion,
  type Scope,
  type StoreConnection,
} from '@ployz/store';
import { type MachineRecord, PloyzError } from '@ployz/types';
import { machineCommands } from '../daemon/machine-commands.ts';
import { type ApplyStep, applySteps, failureOutcome } from './apply.ts';
import { assertApplicable, type PromotionPlan } from './plan.ts';

/** How long a member may take to start, and the three to place a three-replica stream. */
export const MEMBER_START_TIMEOUT_MS = 60_000;
export const LEADER_TIMEOUT_MS = 60_000;
/** How long a switched machine may take to answer through the members. */
export const SWITCH_TIMEOUT_MS = 60_000;
const RETRY_MS = 500;

export interface PromotionHost {
  /** This machine: the coordinator. */
  coordinator: string;
  scope: Scope;
  /** The old store: this machine's ployz-nats. */
  source: NatsConnection;
  records: readonly MachineRecord[];
  plan: PromotionPlan;
  /** This machine's member as the host reaches it (`nats://<bridge .2>:4223`). */
  memberUrl: string;
  nkeySeed: NkeySeedSource;
  /** This machine's own switch-over, awaited (its ployz-nats recreated as a leaf of the members). */
  switchLocal: (body: StoreSwitchRequest) => Promise<unknown>;
  emit: (progress: StoragePromoteProgress) => void;
  signal: AbortSignal;
}

const TRANSIENT = new Set(['RPC_NO_RESPONDERS', 'RPC_TIMEOUT', 'STORE_UNAVAILABLE']);

function codeOf(err: unknown): string {
  return err instanceof PloyzError ? err.code : 'INTERNAL';
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Calls `attempt` until it succeeds, throws a non-transient error, or `timeoutMs` passes (the
 * last error is thrown). A request sent while the machine's ployzd resubscribes is lost, so a
 * machine command after a recreate of its ployz-nats needs this.
 */
async function retrying<T>(
  what: string,
  timeoutMs: number,
  signal: AbortSignal,
  attempt: () => Promise<T>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (signal.aborted) throw err;
      if (!TRANSIENT.has(codeOf(err)) || Date.now() >= deadline) {
        if (err instanceof PloyzError) throw err;
        throw new PloyzError('STORE_PROMOTE_UNHEALTHY', `${what}: ${messageOf(err)}`, { cause: err });
      }
      await sleep(RETRY_MS, signal);
    }
  }
}

/**
 * Until the members' JetStream places a three-replica stream: a metadata leader needs two of the
 * three, a placement at R3 needs all three known and current (before that JetStream answers
 * "no suitable peers for placement"). Probed with a small in-memory R3 stream, deleted again.
 */
async function waitPlacement(nc: NatsConnection, run: string, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + LEADER_TIMEOUT_MS;
  const name = `ployz_promotion_probe_${run}`;
  const config = { name, subjects: [`ployz.promotion.probe.${run}`], num_replicas: 3, storage: 'memory' };
  type ApiReply = { error?: { description?: string } };
  let last = '';
  while (Date.now() < deadline && !signal.aborted) {
    try {
      const created = (
        await nc.request(`$JS.API.STREAM.CREATE.${name}`, JSON.stringify(config), { timeout: 3000 })
      ).json<ApiReply>();
      if (created.error === undefined) {
        await nc.request(`$JS.API.STREAM.DELETE.${name}`, '', { timeout: 3000 });
        return;
      }
      last = created.error.description ?? 'JetStream error';
    } catch (err) {
      last = messageOf(err);
    }
    await sleep(RETRY_MS, signal);
  }
  throw new PloyzError(
    'STORE_PROMOTE_UNHEALTHY',
    `the three store members did not place a three-replica stream in ${LEADER_TIMEOUT_MS / 1000} s (${last}); see ployzctl status on each member`,
    { details: { last_error: last } },
  );
}

export async function runPromotion(host: PromotionHost): Promise<StoragePromoteResult> {
  const startedAt = Date.now();
  const { plan, coordinator, signal } = host;
  const emit = (step: string, machine: string | null, detail: string) =>
    host.emit({ at: new Date().toISOString(), step, machine, detail });
  let current: ApplyStep = { step: 'check_plan' };
  assertApplicable(plan);
  const members = plan.members.map((m) => ({ machine_id: m.machine, overlay_ip: m.overlay_ip }));
  if (!members.some((m) => m.machine_id === coordinator)) {
    throw new PloyzError(
      'STORE_PROMOTE_MACHINES_INVALID',
      `run the promotion on one of ${members.map((m) => m.machine_id).join(', ')}: the coordinator reaches the new store through its own member (this is ${coordinator})`,
      { details: { coordinator, members: members.map((m) => m.machine_id) } },
    );
  }
  const steps = applySteps({ plan, coordinator, records: host.records });
  const memberRpc = (nc: NatsConnection) =>
    new RpcClient<StoreMemberCommands>({ nc, scope: host.scope, commands: storeMemberCommands });
  const pingRpc = (nc: NatsConnection) =>
    new RpcClient<MachineCommands>({ nc, scope: host.scope, commands: machineCommands });
  const sourceRpc = memberRpc(host.source);
  emit('check_plan', null, `${plan.messages} messages, ${plan.bytes} bytes in ${plan.assets.length} assets`);

  let run: string | null = null;
  const startedMembers: string[] = [];
  let target: StoreConnection | null = null;
  const switched: string[] = [];
  const pending: { machine: string; reason: string }[] = [];
  const progress = new Map<string, string>();

  const prepare = async (abort: AbortSignal): Promise<NatsConnection> => {
    for (const step of steps) {
      if (step.step !== 'start_member') continue;
      current = step;
      emit('start_member', step.machine, 'ployz-nats-store');
      const view = await retrying(
        `store_member_start on ${step.machine}`,
        MEMBER_START_TIMEOUT_MS,
        abort,
        () => sourceRpc.call(step.machine, 'store_member_start', { members, run }, { timeoutMs: 30_000 }),
      );
      startedMembers.push(step.machine);
      emit('start_member', step.machine, `${view.container_name} ${view.state}`);
    }
    current = steps.find((s) => s.step === 'wait_leader') ?? current;
    emit('wait_leader', null, members.map((m) => m.machine_id).join(', '));
    target = await connectStore({
      servers: host.memberUrl,
      name: 'ployzd-promotion',
      nkeySeed: host.nkeySeed,
      timeoutMs: 2000,
      minBackoffMs: 250,
      maxBackoffMs: 2000,
      waitOnFirstConnect: true,
    });
    await waitPlacement(target.nc, run ?? 'run', abort);
    emit('wait_leader', null, 'all three members place replicas');
    return target.nc;
  };

  const switchOver = async (targetNc: NatsConnection): Promise<void> => {
    if (run === null) throw new PloyzError('INTERNAL', 'the promotion has no run id');
    const body: StoreSwitchRequest = { members, run };
    const throughMembers = pingRpc(targetNc);
    for (const step of steps) {
      if (step.step !== 'switch_machine') continue;
      current = step;
      emit(
        'switch_machine',
        step.machine,
        step.old_storage ? 'the old storage machine' : 'leaf of the members',
      );
      try {
        if (step.machine === coordinator) await host.switchLocal(body);
        else {
          await retrying(`store_switch on ${step.machine}`, 10_000, signal, () =>
            sourceRpc.call(step.machine, 'store_switch', body, { timeoutMs: 5000 }),
          );
        }
        await retrying(`${step.machine} through the members`, SWITCH_TIMEOUT_MS, signal, () =>
          throughMembers.call(step.machine, 'ping', null, { timeoutMs: 1500 }),
        );
        switched.push(step.machine);
        emit('switch_machine', step.machine, 'answers through the members');
      } catch (err) {
        const reason = `${codeOf(err)}: ${messageOf(err)}`;
        pending.push({ machine: step.machine, reason });
        emit('switch_machine', step.machine, `not switched yet (${reason}); it switches by itself`);
      }
    }
  };

  const onProgress = (p: MigrationProgress) => {
    // One line per asset and phase, and its end: the copy of a big asset is not a line per batch.
    const key = `${p.asset}:${p.phase}`;
    const done = p.copied >= p.total;
    const was = progress.get(key);
    if (was === 'done' || (was === 'started' && !done)) return;
    progress.set(key, done ? 'done' : 'started');
    emit(current.step, null, `${p.asset} ${p.phase} ${p.copied}/${p.total}`);
  };

  try {
    current = { step: 'record' };
    const result = await promoteStore({
      source: host.source,
      scope: host.scope,
      coordinator,
      members: members.map((m) => m.machine_id),
      signal,
      prepare,
      switchOver,
      onProgress,
      onPhase: (phase, record) => {
        run = record.run;
        if (phase === 'preparing') current = { step: 'no_deploys' };
        if (phase === 'migrating') current = { step: 'migrate' };
        if (phase === 'verified') current = { step: 'switched' };
        if (phase === 'switched') current = { step: 'freeze', machine: plan.currentStorage };
        emit(phase, null, `promotion ${record.run}`);
      },
    });
    return {
      run: result.run,
      members: members.map((m) => m.machine_id),
      verified: result.report.assets.map((a) => ({
        asset: a.asset,
        messages: a.messages,
        lastSeq: a.lastSeq,
        lastId: a.lastId,
      })),
      switched,
      pending,
      duration_ms: Date.now() - startedAt,
    };
  } catch (err) {
    const outcome = failureOutcome(current, codeOf(err));
    // The record decides too: a resumed run (past `switched`) never discards the members.
    const record = await readPromotion(host.source, host.scope).catch(() => null);
    if (outcome.cleanup === 'remove_members' && record?.phase !== 'switched') {
      for (const machine of startedMembers) {
        emit('cleanup', machine, 'removing the store member this run started');
        await sourceRpc
          .call(machine, 'store_member_remove', null, { timeoutMs: 30_000 })
          .catch((e: unknown) =>
            emit(
              'cleanup',
              machine,
              `not removed (${codeOf(e)}): run the promotion again or remove it by hand`,
            ),
          );
      }
    }
    throw err instanceof PloyzError
      ? new PloyzError(err.code, err.message, {
          details: { ...err.details, step: current.step, authority: outcome.authority, next: outcome.next },
          cause: err,
        })
      : err;
  } finally {
    await (target as StoreConnection | null)?.close().catch(() => {});
  }
}
