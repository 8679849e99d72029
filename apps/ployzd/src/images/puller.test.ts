/**
 * The puller on the real Docker engine against a real registry (Debian's docker-registry on
 * loopback, @ployz/testkit startRegistry): a tiny image made here (`docker import`, so its id is
 * new) is pushed and removed locally, then pulled by `image_pull`'s long poll (progress, then
 * pulled under its name); held, it is `present` without a pull unless `always`; `image_pull_check`
 * sees its digest, and a tag the registry lacks is `not_found`; the registry stopped →
 * IMAGE_PULL_FAILED `unreachable` naming the image and the machine. With htpasswd auth: no
 * credentials → `unauthorized`; the installation's credentials (sealed, unsealed here) → pulled.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { InstallationKey } from '@ployz/identity';
import type { ImagePullResult } from '@ployz/protocol';
import { startRegistry } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { ImagePuller } from './puller.ts';
import { openCredential, sealCredential } from './registry-auth.ts';

const run = promisify(execFile);
const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });
const tag = randomBytes(4).toString('hex');
const made: string[] = [];

/** A one-file image with a fresh id, pushed to `remote` and removed locally. */
async function pushed(remote: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-pull-'));
  const local = `ployz-test/pull-src:${tag}-${made.length}`;
  try {
    await writeFile(join(dir, 'hello.txt'), `pull ${remote} ${randomBytes(8).toString('hex')}\n`);
    // Incompressible and large enough that the engine reports `Downloading` progress: a layer of a
    // few hundred bytes may go straight to `Download complete`, with no byte count at all.
    await writeFile(join(dir, 'noise.bin'), randomBytes(3 << 20));
    await run('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello.txt', 'noise.bin']);
    await run('docker', ['import', join(dir, 'rootfs.tar'), local]);
    made.push(local, remote);
    const id = (await docker.getImage(local).inspect()).Id;
    await run('docker', ['tag', local, remote]);
    await run('docker', ['push', remote]);
    await run('docker', ['rmi', local, remote]);
    return id;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function pullToEnd(puller: ImagePuller, image: string, always = false): Promise<ImagePullResult[]> {
  const answers: ImagePullResult[] = [];
  const attempt = randomBytes(8).toString('hex');
  for (;;) {
    const a = await puller.pull({ machine: 'm1', image, always, wait_ms: 50, attempt });
    answers.push(a);
    if (a.state !== 'pulling') return answers;
  }
}

afterAll(async () => {
  if (made.length > 0) await run('docker', ['rmi', '-f', ...made]).catch(() => {});
});

describe('ImagePuller on the real engine', () => {
  it('pulls a pushed image with progress, holds it after, sees its digest; a stopped registry is IMAGE_PULL_FAILED naming image and machine', async () => {
    await using registry = await startRegistry();
    const image = `${registry.host}/ployz-test/app:${tag}`;
    const id = await pushed(image);
    const puller = new ImagePuller({ docker: () => docker, machine: 'm1', auth: async () => null });

    const answers = await pullToEnd(puller, image);
    const last = answers.at(-1);
    expect(last).toMatchObject({ state: 'pulled', image_id: id, layers: 1, layers_done: 1 });
    expect(last?.bytes).toBeGreaterThan(0);
    expect((await docker.getImage(image).inspect()).Id).toBe(id);

    // Held: present, nothing pulled, unless always.
    await new Promise((r) => setTimeout(r, 10));
    const again = new ImagePuller({ docker: () => docker, machine: 'm1', auth: async () => null });
    expect(
      await again.pull({ machine: 'm1', image, always: false, wait_ms: 1000, attempt: 'aa11bb22' }),
    ).toMatchObject({
      state: 'present',
      image_id: id,
    });
    expect((await pullToEnd(again, image, true)).at(-1)).toMatchObject({ state: 'pulled', image_id: id });

    const check = await puller.check(image);
    expect(check).toMatchObject({ available: true, reason: null });
    expect(check.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await puller.check(`${registry.host}/ployz-test/app:missing-${tag}`)).toMatchObject({
      available: false,
      reason: 'not_found',
    });

    await registry.kill();
    // A new always-pull is a new pull, not the answer of the one that just finished.
    await expect(pullToEnd(puller, image, true)).rejects.toMatchObject({
      code: 'IMAGE_PULL_FAILED',
      details: { reason: 'unreachable' },
    });
    const gone = `${registry.host}/ployz-test/app:gone-${tag}`;
    const error = await pullToEnd(puller, gone).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isPloyzError(error) && error.code).toBe('IMAGE_PULL_FAILED');
    expect(isPloyzError(error) && error.details).toMatchObject({
      image: gone,
      machine: 'm1',
      registry: registry.host,
      reason: 'unreachable',
    });
    expect((error as Error).message).toMatch(
      new RegExp(`machine m1 cannot pull ${gone.replace(/[.]/g, '\\.')}`),
    );
    expect(await puller.check(image)).toMatchObject({ available: false, reason: 'unreachable' });
  }, 120_000);

  it('with htpasswd auth: no credentials is unauthorized; the installation credentials, sealed and unsealed, pull it', async () => {
    const auth = { username: 'ci', password: `pw-${tag}` };
    await using registry = await startRegistry({ auth });
    const config = await mkdtemp(join(tmpdir(), 'ployz-docker-config-'));
    const image = `${registry.host}/ployz-test/private:${tag}`;
    let id: string;
    try {
      // Push with a login of its own (a config dir of this test, not the user's ~/.docker).
      const login = execFile('docker', [
        '--config',
        config,
        'login',
        registry.host,
        '-u',
        auth.username,
        '--password-stdin',
      ]);
      login.stdin?.end(auth.password);
      const [code] = await once(login, 'exit');
      expect(code).toBe(0);
      const dir = await mkdtemp(join(tmpdir(), 'ployz-pull-'));
      const local = `ployz-test/pull-src:${tag}-private`;
      await writeFile(join(dir, 'hello.txt'), `private ${tag}\n`);
      await run('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello.txt']);
      await run('docker', ['import', join(dir, 'rootfs.tar'), local]);
      await rm(dir, { recursive: true, force: true });
      made.push(local, image);
      id = (await docker.getImage(local).inspect()).Id;
      await run('docker', ['tag', local, image]);
      await run('docker', ['--config', config, 'push', image]);
      await run('docker', ['rmi', local, image]);
    } finally {
      await rm(config, { recursive: true, force: true });
    }

    const anonymous = new ImagePuller({ docker: () => docker, machine: 'm1', auth: async () => null });
    const refused = await pullToEnd(anonymous, image).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isPloyzError(refused) && refused.details).toMatchObject({ reason: 'unauthorized', machine: 'm1' });
    expect((refused as Error).message).toMatch(/ployzctl registry login/);
    expect(await anonymous.check(image)).toMatchObject({ available: false, reason: 'unauthorized' });

    const key = InstallationKey.generate();
    const record = sealCredential(
      key,
      { host: registry.host, ...auth },
      { machine: 'm1', at: new Date().toISOString() },
    );
    expect(JSON.stringify(record)).not.toContain(auth.password);
    const puller = new ImagePuller({
      docker: () => docker,
      machine: 'm1',
      auth: async (host) => (host === registry.host ? openCredential(key, record) : null),
    });
    expect(await puller.check(image)).toMatchObject({ available: true });
    expect((await pullToEnd(puller, image)).at(-1)).toMatchObject({ state: 'pulled', image_id: id });
  }, 120_000);
});
