/**
 * The plan's image lines for images from a registry, against an in-memory ImageAgent (what each
 * machine holds, what its registry would serve): present / pull / unavailable / unknown per
 * machine and policy; a local image keeps the mesh path; the strictest policy of two services wins.
 */
import { PloyzError, type PullPolicy } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import type { EngineOptions } from '../context.ts';
import type { DeployPlan } from '../model/plan.ts';
import type { ImageAgent } from '../ports.ts';
import { imageNeeds, planImages } from './images.ts';

const REMOTE = '127.0.0.1:5000/team/app:1.2';
const ID = `sha256:${'1'.repeat(64)}`;

function planOf(services: { service: string; machines: string[] }[]): DeployPlan {
  const plan = {
    services: services.map((s) => ({
      service: s.service,
      revision: 'rev-1',
      slots: s.machines.map((machine, slot) => ({ slot, machine, instance: `i${slot}`, action: 'start' })),
    })),
    images: [],
  };
  return plan as unknown as DeployPlan;
}

const spec = (image: string, pull_policy?: PullPolicy) => ({
  image,
  source: pull_policy === undefined ? {} : { pull_policy },
});

/** m1 is the coordinator; `held` names what each machine holds; m9 never answers. */
function engineWith(held: Record<string, string[]>, serves: (machine: string) => boolean): EngineOptions {
  const images: ImageAgent = {
    local: async (image) => ((held.m1 ?? []).includes(image) ? { id: ID, size: 100 } : null),
    has: async (machine, image) => {
      if (machine === 'm9') throw new PloyzError('RPC_NO_RESPONDERS', 'no responders');
      return (held[machine] ?? []).includes(image);
    },
    send: async () => {},
    pull: async () => {},
    pullCheck: async (machine) =>
      serves(machine)
        ? { available: true, detail: '127.0.0.1:5000 serves it' }
        : { available: false, detail: 'unreachable: connection refused' },
  };
  return { images, machineId: 'm1' } as unknown as EngineOptions;
}

describe('planImages for images from a registry', () => {
  it('per machine: held (if_not_present) → present, lacking → pull or unavailable, silent → unknown', async () => {
    const engine = engineWith({ m2: [REMOTE] }, (m) => m !== 'm4');
    const plan = await planImages(
      engine,
      planOf([{ service: 'app', machines: ['m1', 'm2', 'm3', 'm4', 'm9'] }]),
      new Map([['app', spec(REMOTE)]]),
    );
    expect(plan.images.map((i) => [i.machine, i.action])).toEqual([
      ['m1', 'pull'],
      ['m2', 'present'],
      ['m3', 'pull'],
      ['m4', 'unavailable'],
      ['m9', 'unknown'],
    ]);
    expect(plan.images.find((i) => i.machine === 'm4')?.detail).toMatch(/m4 cannot pull it: unreachable/);
  });

  it('always pulls where it is held; never and a local image keep the mesh path', async () => {
    const engine = engineWith({ m1: [REMOTE, 'ployz/hello:latest'], m2: [REMOTE] }, () => true);
    const always = await planImages(
      engine,
      planOf([{ service: 'app', machines: ['m2'] }]),
      new Map([['app', spec(REMOTE, 'always')]]),
    );
    expect(always.images).toEqual([
      expect.objectContaining({
        machine: 'm2',
        action: 'pull',
        detail: expect.stringMatching(/^pull_policy always/),
      }),
    ]);
    const never = await planImages(
      engine,
      planOf([{ service: 'app', machines: ['m3'] }]),
      new Map([['app', spec(REMOTE, 'never')]]),
    );
    expect(never.images).toEqual([expect.objectContaining({ machine: 'm3', action: 'send', image_id: ID })]);
    const local = await planImages(
      engine,
      planOf([{ service: 'web', machines: ['m3'] }]),
      new Map([['web', spec('ployz/hello:latest')]]),
    );
    expect(local.images).toEqual([expect.objectContaining({ machine: 'm3', action: 'send' })]);
  });

  it('two services starting one image on one machine: the strictest policy', () => {
    const needs = imageNeeds(
      planOf([
        { service: 'a', machines: ['m2'] },
        { service: 'b', machines: ['m2'] },
      ]),
      new Map([
        ['a', spec(REMOTE, 'never')],
        ['b', spec(REMOTE, 'always')],
      ]),
    );
    expect(needs).toEqual([{ image: REMOTE, machine: 'm2', policy: 'always' }]);
  });
});
