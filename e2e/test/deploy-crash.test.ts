/**
 * ployzd killed with -9 at each of the nine apply steps (PLOYZ_TEST_PAUSE_AT_STEP pauses there):
 * on restart status tells the truth, routing is whole (one version served, the committed one), and
 * the next deploy succeeds at once (the dead holder's lease is broken by recovery).
 */
import { describe, expect, it } from 'vitest';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

interface StatusRow {
  deploy_id: string;
  state: string;
  step: number;
  error: { code: string; message: string } | null;
}

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[deploy-crash +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

/** What must be true after a kill at each step (step 6 uses a checkpoint phase). */
const EXPECT: Record<number, { state: string | null; serves: 'old' | 'new' }> = {
  1: { state: null, serves: 'old' },
  2: { state: null, serves: 'old' },
  3: { state: null, serves: 'old' },
  4: { state: null, serves: 'old' },
  5: { state: 'failed', serves: 'old' },
  6: { state: 'failed', serves: 'old' },
  7: { state: 'failed', serves: 'old' },
  8: { state: 'committed', serves: 'new' },
  9: { state: 'committed', serves: 'new' },
};

describe('deploy crash safety (kill -9 at each step)', () => {
  it('status tells the truth, no partial routing, next deploy succeeds', { timeout: 1_200_000 }, async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    let serving = 'base';
    const base = await d.write('base.toml', helloManifest({ version: serving, host: d.host }));
    expect((await d.deploy(base)).code).toBe(0);
    await d.waitServing(serving);

    for (let step = 1; step <= 9; step++) {
      mark(`step ${step}: restart paused at ${step}`);
      await h.kill9();
      process.env.PLOYZ_TEST_PAUSE_AT_STEP = String(step);
      try {
        await h.start();
      } finally {
        delete process.env.PLOYZ_TEST_PAUSE_AT_STEP;
      }
      await d.engineReady();
      const before = (await d.ctlJson<StatusRow[]>('deploy', 'ls')).map((s) => s.deploy_id);

      const next = `crash${step}`;
      const phases =
        step === 6 ? '\n[[phases]]\nid = "app"\nservices = ["hello"]\ncommit_policy = "checkpoint"\n' : '';
      const file = await d.write(
        `crash${step}.toml`,
        helloManifest({ version: next, host: d.host }) + phases,
      );
      let onPaused!: () => void;
      const paused = new Promise<void>((r) => {
        onPaused = r;
      });
      const run = d.deploy(file, (l) => {
        if (l.type === 'paused') onPaused();
      });
      void run.then(() => onPaused());
      await paused;
      mark(`step ${step}: paused, kill -9`);
      await h.kill9();
      const r = await run;
      expect(
        r.lines.some((l) => l.type === 'paused' && l.step === step),
        JSON.stringify(r.lines.slice(-2)),
      ).toBe(true);

      await h.start();
      await d.engineReady();
      const after = await d.ctlJson<StatusRow[]>('deploy', 'ls');
      const fresh = after.filter((s) => !before.includes(s.deploy_id));
      expect(after.filter((s) => ['planning', 'applying', 'checkpoint_committed'].includes(s.state))).toEqual(
        [],
      );
      const want = EXPECT[step];
      if (want?.state === null) expect(fresh).toEqual([]);
      else {
        expect(fresh).toHaveLength(1);
        expect(fresh[0]?.state).toBe(want?.state);
        if (want?.state === 'failed') expect(fresh[0]?.error?.message).toContain(`step ${step}`);
      }
      if (want?.serves === 'new') serving = next;
      await d.waitServing(serving, 10_000);
      expect(Object.keys(await d.workloads())).toHaveLength(1);

      mark(`step ${step}: recovered (${fresh[0]?.state ?? 'nothing stored'}), next deploy`);
      const after2 = `after${step}`;
      const ok = await d.deploy(
        await d.write(`after${step}.toml`, helloManifest({ version: after2, host: d.host })),
      );
      expect(ok.code, JSON.stringify(ok.last)).toBe(0);
      serving = after2;
      await d.waitServing(serving);
    }
  });
});
