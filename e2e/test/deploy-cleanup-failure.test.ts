/**
 * Step 9 fails on the real engine (issue 15 item 11): the old instance cannot be removed because
 * a file in its container's overlay upper directory is immutable (`chattr +i`), so dockerd's
 * `rm -f` stops the container but fails with "unlinkat …: operation not permitted". The final
 * commit is already in, so the deploy is `FailedAfterCheckpoint` with the new version serving and
 * the leftover unrouted; once the obstacle is gone the next deploy removes the leftover as an
 * orphan, and rolling back to the failed deploy restores what it committed.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DeployHarness, helloManifest } from './deploy-harness.ts';
import {
  type DeployDetail,
  deployIdOf,
  inspectField,
  instancesWith,
  type StatusRow,
  sample,
} from './deploy-scenarios.ts';

const run = promisify(execFile);
const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[deploy-cleanup-failure +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

describe('cleanup fails after the final commit (real ployzd, dockerd, nats, gateway)', () => {
  it('FailedAfterCheckpoint, new version serving, leftover removed by the next deploy, rollback works', async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    let pinned: string | null = null;
    try {
      mark('---- v1');
      const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host }));
      expect((await d.deploy(v1)).code).toBe(0);
      await d.waitServing('v1');
      const [oldName, oldId] = Object.entries(await d.workloads())[0] ?? [];
      expect(oldId).toBeTruthy();

      mark('---- pin the v1 container: an immutable file in its overlay upper dir');
      const upper = await inspectField(String(oldId), '{{.GraphDriver.Data.UpperDir}}');
      expect(upper).toMatch(/^\//);
      pinned = join(String(upper), 'ployz-e2e-pin');
      await writeFile(pinned, 'the engine cannot unlink this\n');
      await run('chattr', ['+i', pinned]);

      mark('---- v2: commits, serves, cleanup fails');
      const v2 = await d.write('v2.toml', helloManifest({ version: 'v2', host: d.host }));
      const failed = await d.deploy(v2);
      const failedId = deployIdOf(failed.lines);
      expect(failedId).not.toBe('');
      expect(failed.code, JSON.stringify(failed.last)).not.toBe(0);
      expect(failed.last).toMatchObject({
        type: 'error',
        error: {
          code: 'DEPLOY_FAILED_AFTER_CHECKPOINT',
          message: expect.stringContaining('operation not permitted'),
        },
      });
      expect(failed.lines).toContainEqual(
        expect.objectContaining({ type: 'error', state: 'FailedAfterCheckpoint' }),
      );
      expect(failed.lines).toContainEqual(expect.objectContaining({ type: 'commit', kind: 'final' }));
      expect(instancesWith(failed.lines, 'removed')).toEqual([]);
      // The new version serves, and only it: the leftover is not routed.
      await d.waitServing('v2');
      expect(new Set(await sample(d, 20))).toEqual(new Set(['v2']));

      const shown = await d.ctlJson<DeployDetail>('deploy', 'show', failedId);
      expect(shown.status).toMatchObject({ state: 'FailedAfterCheckpoint', step: 9 });
      expect(shown.commits.map((c) => c.kind)).toEqual(['final']);
      expect(await h.human('deploy', 'show', failedId)).toContain('FailedAfterCheckpoint');
      expect((await d.ctlJson<StatusRow[]>('deploy', 'ls'))[0]).toMatchObject({
        deploy_id: failedId,
        state: 'FailedAfterCheckpoint',
      });
      // The old container is still there (stopped, its removal refused by the engine).
      expect(await inspectField(String(oldId), '{{.State.Running}}')).toBe('false');

      mark('---- obstacle gone: the next deploy removes the leftover');
      await run('chattr', ['-i', pinned]);
      pinned = null;
      const v3 = await d.write('v3.toml', helloManifest({ version: 'v3', host: d.host }));
      const next = await d.deploy(v3);
      expect(next.code, JSON.stringify(next.last)).toBe(0);
      expect(next.last).toMatchObject({ type: 'done', status: { state: 'committed' } });
      const oldInstance = String(oldName).slice(h.prefix.length);
      expect(instancesWith(next.lines, 'removed')).toContain(oldInstance);
      expect(await inspectField(String(oldId), '{{.Id}}')).toBeNull();
      await d.waitServing('v3');
      expect(Object.keys(await d.workloads())).toHaveLength(1);

      mark('---- rollback to the FailedAfterCheckpoint deploy: what it committed (v2) again');
      const rb = await d.rollback(failedId);
      expect(rb.code, JSON.stringify(rb.last)).toBe(0);
      expect(rb.last).toMatchObject({ type: 'done', status: { state: 'committed', rollback_of: failedId } });
      await d.waitServing('v2');
      expect(Object.keys(await d.workloads())).toHaveLength(1);
    } finally {
      if (pinned) await run('chattr', ['-i', pinned]).catch(() => {});
      mark('done');
    }
  });
});
