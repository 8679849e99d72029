/** The engine watch on the real Docker engine: a system container's event asks for a repair at once. */
import { LABELS } from '@ployz/identity';
import { type DockerScope, dockerScope } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asksForRepair, watchEngine } from './engine-watch.ts';

let docker: DockerScope;
const abort = new AbortController();

beforeAll(async () => {
  docker = await dockerScope('engine-watch');
});

afterAll(async () => {
  abort.abort();
  await docker?.[Symbol.asyncDispose]();
});

const labels = (installation: string, kind = 'system') => ({
  [LABELS.managed]: 'true',
  [LABELS.kind]: kind,
  [LABELS.installation]: installation,
});

describe('watchEngine', () => {
  it("only this installation's system containers ask for repair", () => {
    const event = (l: Record<string, string>) => ({ action: 'die', id: 'c1', labels: l });
    expect(asksForRepair(event(labels('mine')), 'mine')).toBe(true);
    expect(asksForRepair(event(labels('theirs')), 'mine')).toBe(false);
    expect(asksForRepair(event(labels('mine', 'workload')), 'mine')).toBe(false);
    expect(asksForRepair(event({}), 'mine')).toBe(false);
  });

  it('asks for a repair check on connecting to the engine and when a system container dies, not at a tick', async () => {
    let checks = 0;
    let wake: () => void = () => {};
    const checked = () => new Promise<void>((resolve) => (wake = resolve));
    let next = checked();
    watchEngine(
      docker.docker,
      {
        installation: 'mine',
        settleMs: 20,
        followUps: 1,
        repair: async () => {
          checks++;
          wake();
          return 'repaired';
        },
      },
      abort.signal,
    );
    await next; // the connect to the event stream
    expect(checks).toBe(1);
    next = checked();
    const mine = await docker.run({
      name: `ployz-${docker.id}-networking`,
      Image: 'ployz/hello:latest',
      Labels: labels('mine'),
    });
    await mine.kill();
    await next; // the test timeout is the hang guard
    expect(checks).toBeGreaterThan(1);
  });
});
