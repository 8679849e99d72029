import { describe, expect, it } from 'vitest';
import { capacityOf, machine, service } from '../../../test/fakes/sample-records.ts';
import { placeService } from './placement.ts';

const fleet = Array.from({ length: 50 }, (_, i) =>
  machine(`m${String(i).padStart(2, '0')}`, i % 2 === 0 ? 'eu' : 'us'),
);

describe('placeService', () => {
  it('spreads replicated slots over distinct machines before stacking', () => {
    const placed = placeService({
      service: service('web', { placement: { mode: 'replicated', replicas: 5, regions: [] } }),
      machines: fleet,
      capacity: capacityOf(fleet),
      previous: [],
    });
    expect(placed.map((p) => p.slot)).toEqual([0, 1, 2, 3, 4]);
    expect(new Set(placed.map((p) => p.machine)).size).toBe(5);
  });

  it('stacks slots when there are fewer machines than replicas', () => {
    const two = [machine('a'), machine('b')];
    const placed = placeService({
      service: service('web', { placement: { mode: 'replicated', replicas: 5, regions: [] } }),
      machines: two,
      capacity: capacityOf(two),
      previous: [],
    });
    const perMachine = placed.reduce(
      (m, p) => m.set(p.machine, (m.get(p.machine) ?? 0) + 1),
      new Map<string, number>(),
    );
    expect([...perMachine.values()].sort()).toEqual([2, 3]);
  });

  it('keeps replicated slots on their machine while eligible', () => {
    const previous = [
      { slot: 0, machine: 'm17', instance: '0-a' },
      { slot: 1, machine: 'm33', instance: '1-b' },
      { slot: 2, machine: 'm41', instance: '2-c' },
    ];
    const placed = placeService({
      service: service('web', { placement: { mode: 'replicated', replicas: 3, regions: [] } }),
      machines: fleet,
      capacity: capacityOf(fleet),
      previous,
    });
    expect(placed).toEqual([
      { slot: 0, machine: 'm17' },
      { slot: 1, machine: 'm33' },
      { slot: 2, machine: 'm41' },
    ]);
  });

  it('moves a slot off a machine in a draining or disabled region, or one that did not answer', () => {
    const ms = [
      machine('a', 'r1'),
      machine('b', 'r2', 'draining'),
      machine('c', 'r3', 'disabled'),
      machine('d', 'r1'),
      machine('e', 'r1'),
    ];
    const cap = capacityOf(ms);
    cap.delete('d'); // no responder
    const previous = [
      { slot: 0, machine: 'b', instance: 'x' },
      { slot: 1, machine: 'c', instance: 'y' },
      { slot: 2, machine: 'd', instance: 'z' },
    ];
    const placed = placeService({
      service: service('web', { placement: { mode: 'replicated', replicas: 3, regions: [] } }),
      machines: ms,
      capacity: cap,
      previous,
    });
    for (const p of placed) expect(['a', 'e']).toContain(p.machine);
  });

  it('never places on machines that are not active', () => {
    const ms = [
      machine('a', 'r1', 'compute', 'joining'),
      machine('b', 'r1', 'compute', 'removed'),
      machine('c'),
    ];
    const placed = placeService({
      service: service('web', { placement: { mode: 'replicated', replicas: 2, regions: [] } }),
      machines: ms,
      capacity: capacityOf(ms),
      previous: [],
    });
    expect(placed.every((p) => p.machine === 'c')).toBe(true);
  });

  it('global: one slot per eligible machine, slot numbers kept per machine', () => {
    const ms = [machine('a'), machine('b', 'r1', 'draining'), machine('c'), machine('d')];
    const previous = [
      { slot: 0, machine: 'b', instance: 'x' },
      { slot: 1, machine: 'c', instance: 'y' },
    ];
    const placed = placeService({
      service: service('agent', { placement: { mode: 'global', regions: [] } }),
      machines: ms,
      capacity: capacityOf(ms),
      previous,
    });
    expect(placed).toEqual([
      { slot: 0, machine: 'a' },
      { slot: 1, machine: 'c' },
      { slot: 2, machine: 'd' },
    ]);
  });

  it('honours region constraints', () => {
    const placed = placeService({
      service: service('web', { placement: { mode: 'global', regions: ['us'] } }),
      machines: fleet,
      capacity: capacityOf(fleet),
      previous: [],
    });
    expect(placed).toHaveLength(25);
    expect(placed.every((p) => Number(p.machine.slice(1)) % 2 === 1)).toBe(true);
  });

  it('skips machines without the memory a new slot asks for', () => {
    const ms = [machine('a'), machine('b')];
    const cap = capacityOf(ms, 100);
    cap.set('b', { cpus: 2, memory_free_mb: 8000, disk_free_mb: 1 });
    const placed = placeService({
      service: service('db', {
        resources: { memory_mb: 512 },
        placement: { mode: 'replicated', replicas: 2, regions: [] },
      }),
      machines: ms,
      capacity: cap,
      previous: [],
    });
    expect(placed.every((p) => p.machine === 'b')).toBe(true);
  });

  it('fails with DEPLOY_NO_CAPACITY and a hint when no machine is eligible', () => {
    const ms = [machine('a', 'r1', 'disabled')];
    expect(() =>
      placeService({ service: service('web'), machines: ms, capacity: capacityOf(ms), previous: [] }),
    ).toThrowError(
      expect.objectContaining({
        code: 'DEPLOY_NO_CAPACITY',
        message: expect.stringContaining('ployzctl machine ls'),
      }),
    );
  });

  it('is deterministic for the same input (200 machines, many slots)', () => {
    const big = Array.from({ length: 200 }, (_, i) =>
      machine(`n${i}`, `r${i % 7}`, i % 11 === 0 ? 'draining' : 'compute'),
    );
    const input = {
      service: service('web', { placement: { mode: 'replicated' as const, replicas: 120, regions: [] } }),
      machines: big,
      capacity: capacityOf(big),
      previous: [],
    };
    const a = placeService(input);
    expect(placeService(input)).toEqual(a);
    expect(a.some((p) => Number(p.machine.slice(1)) % 11 === 0)).toBe(false);
    expect(new Set(a.map((p) => p.machine)).size).toBe(120);
  });
});
