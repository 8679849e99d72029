/**
 * Applying a promotion plan (`--yes`, issue 19), pure: the ordered steps the coordinator runs and,
 * for a failure at any step, where the installation is left and what cleans up. The runner
 * (runner.ts) executes them: steps 2–3 and 6–9 are @ployz/store `promoteStore`, 4–5 its
 * `prepare`, 10 its `switchOver`.
 *
 * Order, and why:
 *
 * 1. `check_plan`: the plan's guardrails again, now (`assertApplicable`); nothing changed yet.
 * 2. `record`: the promotion record on the old store (phase `preparing`, a lease). First, so a
 *    second coordinator is refused (STORE_PROMOTING) before it touches any member, and deploys are
 *    refused from here on.
 * 3. `no_deploys`: a live deploy lease refuses the promotion (DEPLOY_LOCK_HELD).
 * 4. `start_member` × 3: `ployz-nats-store` on each member (ADR 0020), the coordinator's machine
 *    first when it is one (its member is the one it reaches without the mesh).
 * 5. `wait_leader`: the three members elected a JetStream metadata leader (one member alone never
 *    does, DESIGN.md §9).
 * 6. `migrate`: the copy at R3 and its verification (`migrateStore`), record `migrating` → `verified`.
 * 7. `switched`: the commit point, on the old store. From here the new store is the installation's.
 * 8. `freeze`: the old store's assets sealed, every write there refused (STORE_PROMOTING).
 * 9. `catch_up`: what landed on the old store since the verification, copied and verified; `done`
 *    on the new store, `finished_at` on the old record.
 * 10. `switch_machine` × every active machine: its ployz-nats becomes a leaf of the three members
 *    (their leaf port); the old storage machine after the others — its ployz-nats stops serving
 *    JetStream, so every machine that was its leaf must have left it first — and the coordinator
 *    (a member) last: it reaches unswitched machines through its own ployz-nats and switches
 *    itself locally. Local clients (ployzd, gateway, DNS) keep their `4222` address; the routing
 *    stream on the members has the same seqs, so gateways and DNS resume where they were.
 */
import type { PromotionRecord } from '@ployz/store';
import type { MachineRecord } from '@ployz/types';
import type { PromotionPlan } from './plan.ts';

export type ApplyStep =
  | { step: 'check_plan' }
  | { step: 'record' }
  | { step: 'no_deploys' }
  | { step: 'start_member'; machine: string }
  | { step: 'wait_leader'; members: string[] }
  | { step: 'migrate' }
  | { step: 'switched' }
  | { step: 'freeze'; machine: string }
  | { step: 'catch_up' }
  | { step: 'switch_machine'; machine: string; old_storage: boolean };

export interface ApplyInput {
  plan: PromotionPlan;
  /** The machine running the promotion (its ployzd). */
  coordinator: string;
  /** Every machine of the installation; the active ones are switched over. */
  records: readonly MachineRecord[];
}

/** The steps of one promotion, in order (pure). */
export function applySteps(input: ApplyInput): ApplyStep[] {
  const { plan, coordinator } = input;
  const members = plan.members.map((m) => m.machine);
  const starts = [...members].sort((a, b) => Number(b === coordinator) - Number(a === coordinator));
  const old = plan.currentStorage;
  const others = input.records
    .filter((r) => r.lifecycle === 'active' && r.id !== old && r.id !== coordinator)
    .map((r) => r.id)
    .sort();
  // The old storage machine after every machine that was its leaf; the coordinator last of all:
  // it reaches the not-yet-switched machines through its own ployz-nats, and its own switch is
  // local (it reaches the members through its own member, never through the mesh).
  const last =
    old === coordinator
      ? [{ step: 'switch_machine' as const, machine: old, old_storage: true }]
      : [
          { step: 'switch_machine' as const, machine: old, old_storage: true },
          { step: 'switch_machine' as const, machine: coordinator, old_storage: false },
        ];
  return [
    { step: 'check_plan' },
    { step: 'record' },
    { step: 'no_deploys' },
    ...starts.map((machine) => ({ step: 'start_member' as const, machine })),
    { step: 'wait_leader', members },
    { step: 'migrate' },
    { step: 'switched' },
    { step: 'freeze', machine: old },
    { step: 'catch_up' },
    ...others.map((machine) => ({ step: 'switch_machine' as const, machine, old_storage: false })),
    ...last,
  ];
}

export interface FailureOutcome {
  /** Which store the installation is on after this failure. */
  authority: 'old' | 'new';
  /**
   * `remove_members`: the members this run started are removed (containers and their data
   * directories: the copy is discarded, the old store never changed); `none`: left as they are.
   */
  cleanup: 'remove_members' | 'none';
  /** The record left on the old store: `failed`, `switched` (lease released), or as it was. */
  record: 'unchanged' | 'failed' | 'switched';
  /** What the operator runs next. */
  next: 'fix_and_plan_again' | 'promote_again' | 'finish_promotion' | 'switch_over_again';
}

const ORDER: ApplyStep['step'][] = [
  'check_plan',
  'record',
  'no_deploys',
  'start_member',
  'wait_leader',
  'migrate',
  'switched',
  'freeze',
  'catch_up',
  'switch_machine',
];

function passed(step: ApplyStep['step'], point: ApplyStep['step']): boolean {
  return ORDER.indexOf(step) > ORDER.indexOf(point);
}

/**
 * Where a failure at `step` leaves the installation (pure). `code` is the failure's error code:
 * a `record` refused with STORE_PROMOTING is another coordinator's promotion, whose members this
 * run must not remove.
 */
export function failureOutcome(step: ApplyStep, code: string): FailureOutcome {
  if (step.step === 'check_plan') {
    return { authority: 'old', cleanup: 'none', record: 'unchanged', next: 'fix_and_plan_again' };
  }
  if (step.step === 'record') {
    return {
      authority: 'old',
      cleanup: 'none',
      record: 'unchanged',
      next: code === 'STORE_PROMOTING' ? 'promote_again' : 'fix_and_plan_again',
    };
  }
  if (!passed(step.step, 'migrate')) {
    // The commit point was not reached: the old store is authoritative and untouched, deploys
    // are allowed again at once (the record is `failed`), the half-built cluster is discarded.
    return {
      authority: 'old',
      cleanup: step.step === 'no_deploys' ? 'none' : 'remove_members',
      record: 'failed',
      next: 'promote_again',
    };
  }
  if (step.step === 'switched') {
    // Writing the commit point failed: it is either durable or not. Not durable → the old
    // store's record expires and it stays authoritative; durable → the next run resumes. Either
    // way the members must stay (they may hold the installation's store now).
    return { authority: 'old', cleanup: 'none', record: 'unchanged', next: 'promote_again' };
  }
  if (step.step === 'freeze' || step.step === 'catch_up') {
    return { authority: 'new', cleanup: 'none', record: 'switched', next: 'finish_promotion' };
  }
  // A machine's switch-over: the data is complete on the new store; that machine (and the ones
  // after it) keep reading their last view and have their writes refused until switched.
  return { authority: 'new', cleanup: 'none', record: 'switched', next: 'switch_over_again' };
}

/**
 * Whether this machine should point its ployz-nats at the store members by itself (pure): its
 * store is an old store past a finished promotion's commit point whose coordinator's lease is
 * over (the coordinator switches machines in order while it holds it), or the new store itself
 * (`done`) while this machine has no switch-over record (it joined a switched leaf, say).
 */
export function switchesItself(record: PromotionRecord | null, hasLeaf: boolean, now: Date): boolean {
  if (hasLeaf || record === null) return false;
  if (record.phase === 'done') return true;
  return (
    record.phase === 'switched' &&
    Boolean(record.finished_at) &&
    Date.parse(record.expires_at) <= now.getTime()
  );
}
