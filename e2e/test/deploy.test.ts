import { describe, expect, it } from 'vitest';
import { docker } from './daemon-harness.ts';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

interface StatusRow {
  deploy_id: string;
  state: string;
  rollback_of: string | null;
  error: { code: string } | null;
}

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[deploy.test +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

describe('deploy on one machine (real ployzd, dockerd, nats, gateway)', () => {
  it('deploys, no-ops, replaces under load, fails safely, refuses concurrency and rolls back', async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    const imageV2 = `ployz/hello:e2e-${h.id}`;
    await docker('tag', 'ployz/hello:latest', imageV2);
    try {
      mark('---- deploy v1');
      const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host }));
      const first = await d.deploy(v1);
      expect(first.code, JSON.stringify(first.lines.slice(-3))).toBe(0);
      const steps = first.lines.filter((l) => l.type === 'step' && l.state === 'done').map((l) => l.step);
      expect(steps).toEqual([1, 2, 3, 4, 5, 7, 8, 9]);
      expect(first.last).toMatchObject({ type: 'done', noop: false, status: { state: 'committed' } });
      const firstId = String((first.last?.status as { deploy_id?: string } | undefined)?.deploy_id);
      await d.waitServing('v1');
      const containersV1 = await d.workloads();
      expect(Object.keys(containersV1)).toHaveLength(1);
      expect(Object.keys(containersV1)[0]).toMatch(new RegExp(`^${h.prefix}demo-hello-0-[0-9a-z]{8}$`));

      mark('---- redeploy unchanged: no-op, 0 containers touched; preview is clean (exit 0)');
      const again = await d.deploy(v1);
      expect(again.last).toMatchObject({ type: 'done', noop: true });
      expect(await d.workloads()).toEqual(containersV1);
      const clean = await h.ctl('deploy', 'preview', '-f', v1);
      expect(clean.code).toBe(0);
      expect(clean.json).toMatchObject({ changed: false });
      expect(await h.human('deploy', 'preview', '-f', v1)).toContain('No changes.');

      mark('---- image change under load: 0 failed requests, v2 served, old removed');
      const v2 = await d.write('v2.toml', helloManifest({ version: 'v2', image: imageV2, host: d.host }));
      const pending = await h.ctl('deploy', 'preview', '-f', v2);
      expect(pending.code).toBe(3);
      expect(pending.json).toMatchObject({ changed: true, services: [{ action: 'replace' }] });
      let stop = false;
      let ok = 0;
      const failures: string[] = [];
      const load = (async () => {
        while (!stop) {
          try {
            const r = await d.viaGateway();
            if (r.status === 200) ok++;
            else failures.push(`${r.status} ${r.body.slice(0, 80)}`);
          } catch (e) {
            failures.push(String(e));
          }
        }
      })();
      const second = await d.deploy(v2);
      await d.waitServing('v2');
      await new Promise((r) => setTimeout(r, 500));
      stop = true;
      await load;
      expect(second.code, JSON.stringify(second.last)).toBe(0);
      expect(failures).toEqual([]);
      expect(ok).toBeGreaterThan(20);
      const containersV2 = await d.workloads();
      expect(Object.keys(containersV2)).toHaveLength(1);
      expect(Object.values(containersV2)).not.toEqual(Object.values(containersV1));

      mark('---- failing readiness: failed, v2 still serving, candidates gone');
      const bad = await d.write(
        'bad.toml',
        helloManifest({
          version: 'v3',
          image: imageV2,
          host: d.host,
          readiness: 'http = { path = "/nope" }\ninterval = "100ms"\nretries = 3\nstart_timeout = "2s"',
        }),
      );
      const failed = await d.deploy(bad);
      expect(failed.code).toBe(2);
      expect(failed.last).toMatchObject({ type: 'error', error: { code: 'DEPLOY_READINESS_FAILED' } });
      expect(await d.workloads()).toEqual(containersV2);
      await d.waitServing('v2', 2000);
      const list = await d.ctlJson<StatusRow[]>('deploy', 'ls', '--namespace', 'demo');
      expect(list[0]).toMatchObject({ state: 'failed', error: { code: 'DEPLOY_READINESS_FAILED' } });

      mark('---- concurrent deploy to the same namespace: the lease error');
      // The slow deploy holds its lease until the test lets its candidate become ready (a file
      // the readiness check waits for), so the concurrent deploy meets the lease however slow
      // the machine is.
      const slow = await d.write(
        'slow.toml',
        helloManifest({
          version: 'v4',
          host: d.host,
          readiness:
            'exec = { command = ["sh", "-c", "test -f /tmp/ready"] }\ntimeout = "10s"\ninterval = "100ms"',
        }),
      );
      let paused!: (instance: string | null) => void;
      const started = new Promise<string | null>((r) => {
        paused = r;
      });
      const slowRun = d.deploy(slow, (l) => {
        if (l.type === 'instance' && l.action === 'starting') paused(String(l.instance));
      });
      void slowRun.then((r) => {
        paused(null);
        if (r.code !== 0) mark(`slow deploy ended early: ${JSON.stringify(r.last)}`);
      });
      const candidate = await started;
      expect(candidate).not.toBeNull();
      const concurrent = await d.deploy(v1);
      expect(concurrent.code).toBe(2);
      expect(concurrent.last).toMatchObject({
        type: 'error',
        error: { code: 'DEPLOY_LOCK_HELD', details: { holder: expect.stringContaining('ployzd:m1:') } },
      });
      // Let the candidate pass (its container may still be starting when the event came).
      for (let i = 0; ; i++) {
        const id = (await docker('ps', '-q', '--filter', `label=ployz.instance=${candidate}`)).split('\n')[0];
        if (
          id &&
          (await docker('exec', id, 'touch', '/tmp/ready').then(
            () => true,
            () => false,
          ))
        )
          break;
        if (i > 300) throw new Error(`candidate ${candidate} never ran`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await slowRun).code).toBe(0);
      await d.waitServing('v4');

      mark('---- rollback to the first deploy: v1 again, a new commit with rollback_of');
      const rb = await d.rollback(firstId);
      expect(rb.code, JSON.stringify(rb.last)).toBe(0);
      expect(rb.last).toMatchObject({ type: 'done', status: { state: 'committed', rollback_of: firstId } });
      await d.waitServing('v1');
      const rbId = String((rb.last?.status as { deploy_id?: string } | undefined)?.deploy_id);
      const shown = await d.ctlJson<{ commits: { kind: string; rollback_of: string | null }[] }>(
        'deploy',
        'show',
        rbId,
      );
      expect(shown.commits).toMatchObject([{ kind: 'final', rollback_of: firstId }]);
      // Redeploying the old manifest now changes nothing: same result either way.
      expect((await h.ctl('deploy', 'preview', '-f', v1)).code).toBe(0);
      // Newest first.
      const history = await d.ctlJson<StatusRow[]>('deploy', 'ls');
      expect(history.map((s) => s.state)).toEqual([
        'committed',
        'committed',
        'failed',
        'committed',
        'committed',
      ]);
    } finally {
      await docker('rmi', imageV2).catch(() => '');
    }
  });
});
