// Pulling data-plane images from a real docker-registry on loopback into the host's dockerd:
// a pulled image is checked (the registry's digest among its repo digests, the version label),
// one with another version label is refused and untagged, a missing tag and a stopped registry
// are IMAGE_PULL_FAILED with the reason. Where the refs come from: imagesOf.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { OCI_LABELS, PLOYZ_VERSION } from '@ployz/protocol';
import { httpGet, type Registry, startRegistry } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDaemonConfig } from '../daemon/config.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { hasImage, type PullProgress, pullFailure, pullImage, repositoryOf } from './pull.ts';
import { imagesOf } from './supervisor.ts';

const run = promisify(execFile);
const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });

/** A one-file image with a version label, pushed as `ref` and then removed locally. */
async function pushTiny(ref: string, version: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-pull-'));
  try {
    await writeFile(join(dir, 'f'), `${ref} ${version} ${Math.random()}\n`);
    await run('tar', ['-C', dir, '-cf', join(dir, 'r.tar'), 'f']);
    await run('docker', [
      'import',
      '--change',
      `LABEL ${OCI_LABELS.version}=${version}`,
      join(dir, 'r.tar'),
      ref,
    ]);
    await run('docker', ['push', '--quiet', ref]);
    await run('docker', ['rmi', ref]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function failure(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  const error = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!isPloyzError(error)) throw new Error(`expected a PloyzError, got ${String(error)}`);
  return { code: error.code, details: (error.details ?? {}) as Record<string, unknown> };
}

describe('pullImage against a loopback registry', () => {
  let registry: Registry;
  const refs: string[] = [];
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    for (const ref of refs) await run('docker', ['rmi', '-f', ref]).catch(() => {});
    await registry.stop();
  });

  it('pulls a missing image with progress and checks it against the registry digest and the version', async () => {
    const ref = `${registry.host}/ployz/gateway:${PLOYZ_VERSION}`;
    refs.push(ref);
    await pushTiny(ref, PLOYZ_VERSION);
    expect(await hasImage(docker, ref)).toBe(false);
    const progress: PullProgress[] = [];
    const pulled = await pullImage(docker, ref, {
      expectedVersion: PLOYZ_VERSION,
      onProgress: (p) => progress.push(p),
    });
    const head = await httpGet(
      `${registry.url}/v2/ployz/gateway/manifests/${PLOYZ_VERSION}`,
      { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      'HEAD',
    );
    expect(pulled.digest).toBe(head?.headers['docker-content-digest']);
    expect(pulled.version).toBe(PLOYZ_VERSION);
    const info = await docker.getImage(ref).inspect();
    expect(pulled.id).toBe(info.Id);
    expect(info.RepoDigests).toContain(`${registry.host}/ployz/gateway@${pulled.digest}`);
    expect(progress.some((p) => p.status === `Digest: ${pulled.digest}`)).toBe(true);
    expect(progress.some((p) => p.status === 'Pull complete' && p.layer !== null)).toBe(true);
  });

  it('refuses an image whose version label is not the expected version, and untags it', async () => {
    const ref = `${registry.host}/ployz/dns:${PLOYZ_VERSION}`;
    refs.push(ref);
    await pushTiny(ref, '9.9.9');
    const f = await failure(pullImage(docker, ref, { expectedVersion: PLOYZ_VERSION }));
    expect(f).toMatchObject({
      code: 'IMAGE_VERIFY_FAILED',
      details: { image: ref, reason: 'version', version: '9.9.9', expected: PLOYZ_VERSION },
    });
    expect(await hasImage(docker, ref)).toBe(false);
    // An image named by the operator (no version expected) is taken as it is.
    const taken = await pullImage(docker, ref, { expectedVersion: null });
    expect(taken.version).toBe('9.9.9');
  });

  it('a tag the registry lacks is not_found; a stopped registry is unreachable', async () => {
    const missing = `${registry.host}/ployz/nats:0.0.0-none`;
    expect(await failure(pullImage(docker, missing, { expectedVersion: null }))).toMatchObject({
      code: 'IMAGE_PULL_FAILED',
      details: { image: missing, reason: 'not_found' },
    });
    await registry.kill();
    try {
      const ref = `${registry.host}/ployz/networking:${PLOYZ_VERSION}`;
      expect(await failure(pullImage(docker, ref, { expectedVersion: PLOYZ_VERSION }))).toMatchObject({
        code: 'IMAGE_PULL_FAILED',
        details: { image: ref, reason: 'unreachable' },
      });
    } finally {
      await registry.restart();
    }
  });
});

describe('pull helpers', () => {
  it('names the repository of a reference (registry port kept, tag and digest dropped)', () => {
    expect(repositoryOf('127.0.0.1:5000/ployz/gateway:0.1.0')).toBe('127.0.0.1:5000/ployz/gateway');
    expect(repositoryOf('127.0.0.1:5000/ployz/gateway')).toBe('127.0.0.1:5000/ployz/gateway');
    expect(repositoryOf(`r.example/ployz/dns@sha256:${'a'.repeat(64)}`)).toBe('r.example/ployz/dns');
  });

  it('reads the reason from what Docker says', () => {
    expect(
      pullFailure('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused'),
    ).toBe('unreachable');
    expect(pullFailure('manifest for r/ployz/x:1 not found: manifest unknown')).toBe('not_found');
    expect(pullFailure('unauthorized: authentication required')).toBe('unauthorized');
    expect(pullFailure('something else')).toBe('failed');
  });
});

describe('imagesOf', () => {
  const identity = { image_registry: undefined } as unknown as MachineIdentity;
  it('local builds without a registry; <registry>/ployz/<c>:<version>, pulled, with one; --image-<c> wins', () => {
    const local = imagesOf(parseDaemonConfig([], {}), identity);
    expect(local.gateway).toEqual({ ref: 'ployz/gateway:latest', pull: null });
    const reg = imagesOf(parseDaemonConfig([], { PLOYZ_IMAGE_REGISTRY: '127.0.0.1:5000' }), identity);
    expect(reg.dns).toEqual({
      ref: `127.0.0.1:5000/ployz/dns:${PLOYZ_VERSION}`,
      pull: { expectedVersion: PLOYZ_VERSION },
    });
    const machine = imagesOf(parseDaemonConfig([], {}), { ...identity, image_registry: 'r.example' });
    expect(machine.nats.ref).toBe(`r.example/ployz/nats:${PLOYZ_VERSION}`);
    const pinned = imagesOf(
      parseDaemonConfig(['--image-gateway', 'sha256:abc', '--image-dns', '127.0.0.1:5000/ployz/dns:dev'], {
        PLOYZ_IMAGE_REGISTRY: '127.0.0.1:5000',
      }),
      identity,
    );
    expect(pinned.gateway).toEqual({ ref: 'sha256:abc', pull: null });
    expect(pinned.dns).toEqual({ ref: '127.0.0.1:5000/ployz/dns:dev', pull: { expectedVersion: null } });
    expect(() => parseDaemonConfig([], { PLOYZ_IMAGE_REGISTRY: 'http://127.0.0.1:5000' })).toThrow(
      /--image-registry \(PLOYZ_IMAGE_REGISTRY\): takes host\[:port\], not a URL/,
    );
  });
});
