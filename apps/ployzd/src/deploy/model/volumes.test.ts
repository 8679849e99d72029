import type { CommitSnapshot, DeployCommit, VolumeSpec } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { service } from '../../../test/fakes/sample-records.ts';
import type { DeployPlan, ServicePlan } from './plan.ts';
import type { DeployManifest } from './spec.ts';
import {
  assertVolumeUnchanged,
  coveredVolumes,
  foldSnapshot,
  restartServices,
  revertsFor,
  volumePlanOf,
} from './volumes.ts';

const AT = '2026-01-01T00:00:00.000Z';
const vol = (name: string, over: Partial<VolumeSpec> = {}): VolumeSpec => ({
  name,
  quota_bytes: null,
  scope: 'single',
  owner: null,
  mode: null,
  keep_snapshots: 10,
  ...over,
});

const data = vol('data', { owner: { uid: 10001, gid: 10001 }, mode: 0o750 });
const index = vol('index', { scope: 'per_slot' });
const manifest: DeployManifest = {
  namespace: 'shop',
  services: [
    { ...service('db'), volumes: [data] },
    { ...service('search'), volumes: [index] },
    service('web'),
  ],
  phases: [],
  volumes: [data, index],
  manifest_hash: 'h',
};

function servicePlan(name: string, slots: ServicePlan['slots']): ServicePlan {
  return {
    service: name,
    action: 'replace',
    revision: `rev-${name}`,
    previous_revision: null,
    phase: 'default',
    slots,
    stops: [],
  };
}

const plan: DeployPlan = {
  namespace: 'shop',
  manifest_hash: 'h',
  changed: true,
  services: [
    servicePlan('db', [{ slot: 0, machine: 'm1', instance: 'db-0', action: 'keep' }]),
    servicePlan('search', [
      { slot: 0, machine: 'm1', instance: 's-0', action: 'start' },
      { slot: 1, machine: 'm2', instance: 's-1', action: 'start' },
    ]),
    servicePlan('web', [{ slot: 0, machine: 'm2', instance: 'w-0', action: 'start' }]),
  ],
  phases: [
    {
      id: 'default',
      index: 0,
      commit_policy: 'end_of_deploy',
      services: ['db', 'search', 'web'],
      starts: 3,
      does: '',
    },
  ],
  volumes: [],
  images: [],
  rollback_of: null,
  lineage: null,
  summary: { create: 0, replace: 3, update: 0, remove: 0, unchanged: 0, starts: 3, stops: 0 },
};

const snap = (volume: string, slot: number | null, machine: string, label = 'dep-1'): CommitSnapshot => ({
  volume,
  slot,
  machine,
  driver: 'zfs',
  dataset: `pool/ployz/shop/${volume}`,
  id: `${volume}-${slot}-${label}`,
  label,
  at: AT,
  bytes: 4096,
});

const commit = (snapshots: CommitSnapshot[]): DeployCommit => ({
  id: 'dep-1.final',
  deploy_id: 'dep-1',
  namespace: 'shop',
  kind: 'final',
  phase: null,
  manifest_hash: 'h',
  services: [],
  removed_services: [],
  volume_movements: [],
  volumes: [data, index],
  snapshots,
  reverted: [],
  rollback_of: null,
  lineage: null,
  actor: 't',
  created_at: AT,
});

describe('volume decisions (pure)', () => {
  it('a commit covers each single volume once and each per-slot volume per slot, on the slot machine', () => {
    const covered = coveredVolumes(manifest, plan, ['db', 'search', 'web']);
    expect(covered.map((c) => [c.name, c.machine, c.slot])).toEqual([
      ['data', 'm1', null],
      ['index-0', 'm1', 0],
      ['index-1', 'm2', 1],
    ]);
    expect(coveredVolumes(manifest, plan, ['web'])).toEqual([]);
  });

  it("a rollback reverts each covered volume to the target's snapshot, or refuses before anything", () => {
    const covered = coveredVolumes(manifest, plan, ['db', 'search']);
    const all = [snap('data', null, 'm1'), snap('index', 0, 'm1'), snap('index', 1, 'm2')];
    const { reverts } = revertsFor(covered, [commit(all)], 'dep-1', false);
    expect(reverts.map((r) => [r.target.name, r.snapshot.id])).toEqual([
      ['data', 'data-null-dep-1'],
      ['index-0', 'index-0-dep-1'],
      ['index-1', 'index-1-dep-1'],
    ]);
    // A volume without a snapshot there (dir storage, or newer): refused unless accepted.
    const partial = [commit(all.slice(0, 1))];
    expect(() => revertsFor(covered, partial, 'dep-1', false)).toThrow(
      expect.objectContaining({ code: 'ROLLBACK_NO_SNAPSHOT' }),
    );
    const accepted = revertsFor(covered, partial, 'dep-1', true);
    expect(accepted.reverts.map((r) => r.target.name)).toEqual(['data']);
    expect(accepted.notReverted.map((c) => c.name)).toEqual(['index-0', 'index-1']);
    // A snapshot on another machine than the volume now: refused.
    const moved = [commit([snap('data', null, 'm2'), ...all.slice(1)])];
    expect(() => revertsFor(covered, moved, 'dep-1', false)).toThrow(
      expect.objectContaining({ code: 'ROLLBACK_VOLUME_ELSEWHERE' }),
    );
  });

  it('a service whose data reverts gets new instances for its kept slots', () => {
    let n = 0;
    const next = restartServices(plan, new Set(['db']), (s, slot) => `${s}-${slot}-n${++n}`);
    const db = next.services.find((s) => s.service === 'db');
    expect(db?.slots).toEqual([{ slot: 0, machine: 'm1', instance: 'db-0-n1', action: 'start' }]);
    expect(db?.stops).toEqual([{ slot: 0, machine: 'm1', instance: 'db-0', reason: 'replaced' }]);
    expect(next.phases[0]?.starts).toBe(4);
    expect(next.services.find((s) => s.service === 'web')).toEqual(plan.services[2]);
  });

  it('folds snapshots oldest first without duplicates, keeping where the volume was created', () => {
    const [covered] = coveredVolumes(manifest, plan, ['db']);
    if (covered === undefined) throw new Error('db covers data');
    const first = foldSnapshot(null, covered, commit([]), snap('data', null, 'm1'), 'shop', AT);
    expect(first).toMatchObject({
      name: 'data',
      scope: 'single',
      driver: 'zfs',
      created_by: 'dep-1',
      owner: data.owner,
      mode: 0o750,
    });
    expect(first.snapshots.map((s) => s.id)).toEqual(['data-null-dep-1']);
    const later = { ...commit([]), id: 'dep-2.final', deploy_id: 'dep-2' };
    const second = foldSnapshot(first, covered, later, snap('data', null, 'm1', 'dep-2'), 'shop', AT);
    expect(second.snapshots.map((s) => s.deploy_id)).toEqual(['dep-1', 'dep-2']);
    expect(second.created_by).toBe('dep-1');
    expect(
      foldSnapshot(second, covered, later, snap('data', null, 'm1', 'dep-2'), 'shop', AT).snapshots,
    ).toHaveLength(2);
  });

  it('owner or mode of an existing volume cannot change; unset in the manifest is no change', () => {
    const [covered] = coveredVolumes(manifest, plan, ['db']);
    if (covered === undefined) throw new Error('db covers data');
    const record = foldSnapshot(null, covered, commit([]), undefined, 'shop', AT);
    expect(() => assertVolumeUnchanged({ ...data, owner: { uid: 0, gid: 0 } }, record)).toThrow(
      expect.objectContaining({ code: 'STORAGE_INVALID' }),
    );
    expect(() => assertVolumeUnchanged({ ...data, mode: 0o700 }, record)).toThrow(/mode 0750/);
    expect(() => assertVolumeUnchanged({ ...data, owner: null, mode: null }, record)).not.toThrow();
  });

  it('the plan says per volume: snapshot, revert, not reverted, or no snapshots on dir storage', () => {
    const covered = coveredVolumes(manifest, plan, ['db', 'search']);
    const { reverts } = revertsFor(covered, [commit([snap('data', null, 'm1')])], 'dep-1', true);
    const lines = volumePlanOf(manifest, plan, reverts, covered.slice(1, 2), (m) => m === 'm1');
    expect(lines.map((l) => [l.volume, l.action])).toEqual([
      ['data', 'revert'],
      ['index-0', 'not_reverted'],
      ['index-1', 'no_snapshots'],
    ]);
    // db keeps its slot here: no writer gap; a started single-volume service has one.
    expect(lines[0]?.detail).not.toMatch(/gap/);
    const starting = {
      ...plan,
      services: [servicePlan('db', [{ slot: 0, machine: 'm1', instance: 'n', action: 'start' }])],
    };
    expect(volumePlanOf(manifest, starting, [], [], () => true)[0]?.detail).toMatch(/writer stop gap/);
  });
});
