/**
 * Workload images from a registry (issue 20 item 4), on one machine with a real ployzd, dockerd,
 * NATS and gateway, and Debian's docker-registry on loopback with htpasswd auth:
 *
 * - ployz/hello pushed to the registry as `<registry>/ployz-e2e/hello:<id>` and its tag removed
 *   locally; without credentials the preview says m1 cannot pull it (unauthorized);
 * - `ployzctl registry login <host> --password-stdin` stores them (registry ls shows no password);
 *   the preview now says m1 pulls it; the deploy pulls it at the probe step (image events) and
 *   the gateway serves it;
 * - the registry stopped, a new version with `pull_policy = "always"` fails before its first
 *   durable write with IMAGE_PULL_FAILED naming the image and m1: no new deploy in the history,
 *   the same container, the old version keeps serving.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { docker } from './daemon-harness.ts';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PLOYZCTL = join(ROOT, 'apps/ployzctl/bin/run.js');

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[registry-pull.test +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

interface StatusRow {
  deploy_id: string;
  state: string;
}

/** A command with `input` on stdin; its exit code and output. */
async function withStdin(cmd: string, args: string[], input: string) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code: code ?? 1, stdout, stderr };
}

describe('workload images from a registry (real ployzd, dockerd, gateway, docker-registry)', () => {
  it('pulls at deploy with the installation credentials; a stopped registry fails the deploy before any write, the old version serving', async () => {
    const auth = { username: 'ci', password: `pw-${process.pid}` };
    await using registry = await startRegistry({ auth });
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    const image = `${registry.host}/ployz-e2e/hello:${h.id}`;
    const config = await mkdtemp(join(tmpdir(), 'ployz-e2e-docker-'));
    try {
      mark('---- push ployz/hello to the registry, drop the tag here');
      const login = await withStdin(
        'docker',
        ['--config', config, 'login', registry.host, '-u', auth.username, '--password-stdin'],
        auth.password,
      );
      expect(login.code, login.stderr).toBe(0);
      await docker('tag', 'ployz/hello:latest', image);
      await new Promise<void>((resolve, reject) =>
        execFile('docker', ['--config', config, 'push', image], (e) => (e ? reject(e) : resolve())),
      );
      await docker('rmi', image);
      await expect(docker('image', 'inspect', image)).rejects.toThrow();

      const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', image, host: d.host }));

      mark('---- no credentials: the preview says m1 cannot pull it');
      const blind = await h.ctl('deploy', 'preview', '-f', v1);
      expect(blind.code).toBe(3);
      expect((blind.json as { images: unknown[] }).images).toEqual([
        expect.objectContaining({
          image,
          machine: 'm1',
          action: 'unavailable',
          detail: expect.stringMatching(/unauthorized/),
        }),
      ]);
      // Human output (exit 3: changes pending).
      const human = await withStdin(
        process.execPath,
        ['--conditions=ployz-source', PLOYZCTL, 'deploy', 'preview', '-f', v1, '--socket', h.socket],
        '',
      );
      expect(human.stdout).toMatch(
        new RegExp(`${image.replace(/[.]/g, '\\.')} on m1: unavailable.*IMAGE_PULL_FAILED`),
      );

      mark('---- registry login, ls');
      const stored = await withStdin(
        process.execPath,
        [
          '--conditions=ployz-source',
          PLOYZCTL,
          'registry',
          'login',
          registry.host,
          '--username',
          auth.username,
          '--password-stdin',
          '--json',
          '--socket',
          h.socket,
        ],
        `${auth.password}\n`,
      );
      expect(stored.code, stored.stdout + stored.stderr).toBe(0);
      expect(JSON.parse(stored.stdout)).toMatchObject({
        host: registry.host,
        username: 'ci',
        verified: true,
      });
      const wrong = await withStdin(
        process.execPath,
        [
          '--conditions=ployz-source',
          PLOYZCTL,
          'registry',
          'login',
          registry.host,
          '-u',
          'ci',
          '--password-stdin',
          '--json',
          '--socket',
          h.socket,
        ],
        'not-the-password',
      );
      expect(wrong.code).toBe(2);
      expect(wrong.stdout + wrong.stderr).toContain('REGISTRY_AUTH_FAILED');
      const ls = await h.ctl('registry', 'ls');
      expect(ls.json).toEqual([
        expect.objectContaining({ host: registry.host, username: 'ci', updated_by: 'm1' }),
      ]);
      expect(ls.stdout).not.toContain(auth.password);

      mark('---- preview: m1 pulls it; deploy pulls at the probe step and serves');
      const preview = await h.ctl('deploy', 'preview', '-f', v1);
      expect((preview.json as { images: unknown[] }).images).toEqual([
        expect.objectContaining({ image, machine: 'm1', action: 'pull' }),
      ]);
      const first = await d.deploy(v1);
      expect(first.code, JSON.stringify(first.lines.slice(-3))).toBe(0);
      const pulls = first.lines.filter((l) => l.type === 'image' && l.image === image).map((l) => l.action);
      expect(pulls[0]).toBe('pulling');
      expect(pulls.at(-1)).toBe('pulled');
      expect(first.lines.filter((l) => l.type === 'image' && l.action === 'pulled')).toEqual([
        expect.objectContaining({ machine: 'm1', image, image_id: expect.stringMatching(/^sha256:/) }),
      ]);
      await d.waitServing('v1');
      expect(await docker('image', 'inspect', image, '--format', '{{.Id}}')).toMatch(/^sha256:/);
      const containers = await d.workloads();
      const history = (await d.ctlJson<StatusRow[]>('deploy', 'ls')).map((s) => s.deploy_id);

      mark('---- registry stopped: pull_policy always fails before any write; v1 keeps serving');
      await registry.kill();
      const v2 = await d.write(
        'v2.toml',
        helloManifest({ version: 'v2', image, host: d.host }).replace(
          `image = "${image}"\n`,
          `image = "${image}"\npull_policy = "always"\n`,
        ),
      );
      const failed = await d.deploy(v2);
      expect(failed.code).not.toBe(0);
      expect(failed.last).toMatchObject({
        type: 'error',
        error: { code: 'IMAGE_PULL_FAILED', details: { image, machine: 'm1', reason: 'unreachable' } },
      });
      expect(String((failed.last?.error as { message?: string } | undefined)?.message)).toMatch(
        /machine m1 cannot pull/,
      );
      const started = failed.lines
        .filter((l) => l.type === 'step' && l.state === 'started')
        .map((l) => l.step);
      expect(started).toEqual([1, 2, 3]);
      expect((await d.ctlJson<StatusRow[]>('deploy', 'ls')).map((s) => s.deploy_id)).toEqual(history);
      expect(await d.workloads()).toEqual(containers);
      const served = await d.viaGateway();
      expect(served.status).toBe(200);
      expect(served.body).toContain('(version v1)');
    } finally {
      await rm(config, { recursive: true, force: true });
      await docker('rmi', image).catch(() => {});
    }
  }, 300_000);
});
