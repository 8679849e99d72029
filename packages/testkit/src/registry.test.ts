// startRegistry: a real docker-registry on loopback that the host's dockerd pushes to over plain
// HTTP (127.0.0.0/8 is insecure-allowed by default), which keeps its blobs across kill/restart and
// leaves nothing behind after dispose. Needs Debian's docker-registry and a Docker engine.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { httpGet, startRegistry } from './registry.ts';

const run = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const MANIFEST_ACCEPT = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/** A one-file image imported from a tar (no base image, a few hundred bytes). */
async function tinyImage(ref: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-tiny-'));
  try {
    await writeFile(join(dir, 'hello.txt'), `tiny ${ref} ${Date.now()}\n`);
    await run('tar', ['-C', dir, '-cf', join(dir, 'rootfs.tar'), 'hello.txt']);
    await run('docker', ['import', join(dir, 'rootfs.tar'), ref]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('startRegistry', () => {
  it('answers /v2/, takes a docker push over plain HTTP on loopback, survives kill/restart, leaves nothing', async () => {
    let pid = 0;
    let dir = '';
    const local = `ployz-test/tiny:${process.pid}`;
    {
      await using registry = await startRegistry();
      pid = registry.pid ?? 0;
      dir = registry.dir;
      expect(registry.host).toBe(`127.0.0.1:${registry.port}`);
      expect(registry.url).toBe(`http://127.0.0.1:${registry.port}`);
      expect((await httpGet(`${registry.url}/v2/`))?.status).toBe(200);

      const remote = `${registry.host}/ployz-test/tiny:1`;
      try {
        await tinyImage(local);
        await run('docker', ['tag', local, remote]);
        const { stdout } = await run('docker', ['push', remote]);
        const pushed = /digest: (sha256:[0-9a-f]{64})/.exec(stdout)?.[1];
        expect(pushed).toBeDefined();

        const tags = await httpGet(`${registry.url}/v2/ployz-test/tiny/tags/list`);
        expect(JSON.parse(tags?.body ?? '{}')).toEqual({ name: 'ployz-test/tiny', tags: ['1'] });
        const head = await httpGet(
          `${registry.url}/v2/ployz-test/tiny/manifests/1`,
          { accept: MANIFEST_ACCEPT },
          'HEAD',
        );
        expect(head?.headers['docker-content-digest']).toBe(pushed);

        await registry.kill();
        expect(alive(pid)).toBe(false);
        expect(await httpGet(`${registry.url}/v2/`)).toBeUndefined();
        await registry.restart();
        expect(registry.pid).not.toBe(pid);
        pid = registry.pid ?? 0;
        const again = await httpGet(`${registry.url}/v2/ployz-test/tiny/tags/list`);
        expect(JSON.parse(again?.body ?? '{}').tags).toEqual(['1']);

        // And back: a pull of what was pushed, the local copy removed first.
        await run('docker', ['rmi', remote]);
        await run('docker', ['pull', remote]);
        const { stdout: digests } = await run('docker', [
          'image',
          'inspect',
          remote,
          '--format',
          '{{json .RepoDigests}}',
        ]);
        expect(digests).toContain(pushed);
      } finally {
        await run('docker', ['rmi', '-f', local, remote]).catch(() => {});
      }
    }
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  }, 60_000);
});

describe('startRegistry with auth', () => {
  it('refuses an anonymous /v2/ (401 with a Basic challenge), takes the user and password, refuses a wrong one', async () => {
    await using registry = await startRegistry({ auth: { username: 'ci', password: 's3cret pass' } });
    const anonymous = await httpGet(`${registry.url}/v2/`);
    expect(anonymous?.status).toBe(401);
    expect(String(anonymous?.headers['www-authenticate'])).toMatch(/^Basic realm="ployz-test"/);
    const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
    expect(
      (await httpGet(`${registry.url}/v2/`, { authorization: basic('ci', 's3cret pass') }))?.status,
    ).toBe(200);
    expect((await httpGet(`${registry.url}/v2/`, { authorization: basic('ci', 'wrong') }))?.status).toBe(401);
  });
});
