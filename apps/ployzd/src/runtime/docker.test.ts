/**
 * DockerEngine.remove on a real engine when the engine cannot delete a container: after a dockerd
 * restart overlay2 may fail with "failed to remove root filesystem … device or resource busy".
 * Here the same failure is made on purpose — an immutable file (chattr +i) in the container's
 * upper layer — so the replacement's name must still come free and the sweep must remove the old
 * one once the engine can.
 */
import { execFileSync } from 'node:child_process';
import { LABELS } from '@ployz/identity';
import { dockerScope, requireImage } from '@ployz/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import { DockerEngine, isSetAsideName } from './docker.ts';

const pinned: string[] = [];
afterEach(() => {
  for (const file of pinned.splice(0)) execFileSync('chattr', ['-i', file]);
});

describe('DockerEngine.remove when the engine cannot delete the container', () => {
  it('renames the dead container aside so its name is free; the sweep removes it once the engine can', async () => {
    await using scope = await dockerScope('set-aside');
    await requireImage(scope.docker, 'ployz/hello:latest');
    const installation = `t-${scope.id}`;
    const name = `ployz-sa-${scope.id}-networking`;
    const labels = { [LABELS.installation]: installation, [LABELS.kind]: 'system' };
    const old = await scope.run({ name, Image: 'ployz/hello:latest', Labels: labels });
    // overlay2's layer data (dockerode types only the devicemapper fields).
    const data: Record<string, string | undefined> = (await old.inspect()).GraphDriver.Data;
    const upper = data.UpperDir;
    if (upper === undefined) throw new Error('no overlay upper dir');
    const file = `${upper}/pinned`;
    execFileSync('touch', [file]);
    execFileSync('chattr', ['+i', file]);
    pinned.push(file);

    const engine = new DockerEngine(scope.docker);
    const outcome = await engine.remove(old.id);
    expect(outcome).toMatchObject({ kind: 'set_aside', name: `${name}.stale-${old.id.slice(0, 12)}` });
    expect(outcome.kind === 'set_aside' && outcome.cause).toMatch(/failed to remove root filesystem/);
    const aside = await old.inspect();
    expect(aside.State.Running).toBe(false);
    expect(isSetAsideName(aside.Name.replace(/^\//, ''))).toBe(true);

    // The name is free: the replacement is created under it.
    const next = await scope.run({ name, Image: 'ployz/hello:latest', Labels: labels });
    expect((await next.inspect()).Name).toBe(`/${name}`);

    // Still pinned: the sweep leaves it and says so; never touches the live replacement.
    expect(await engine.sweepSetAside(installation)).toEqual([`${name}.stale-${old.id.slice(0, 12)}`]);
    execFileSync('chattr', ['-i', file]);
    pinned.splice(0);
    expect(await engine.sweepSetAside(installation)).toEqual([]);
    await expect(old.inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect((await next.inspect()).State.Running).toBe(true);
  });

  it('a plain removal removes; a missing container counts as removed', async () => {
    await using scope = await dockerScope('remove');
    await requireImage(scope.docker, 'ployz/hello:latest');
    const c = await scope.run({ Image: 'ployz/hello:latest' });
    const engine = new DockerEngine(scope.docker);
    expect(await engine.remove(c.id)).toEqual({ kind: 'removed' });
    await expect(c.inspect()).rejects.toMatchObject({ statusCode: 404 });
    expect(await engine.remove(c.id)).toEqual({ kind: 'removed' });
  });
});

describe('set-aside names', () => {
  it('are <name>.stale-<12 hex> only', () => {
    expect(isSetAsideName('ployz-networking.stale-0123456789ab')).toBe(true);
    expect(isSetAsideName('ployz-networking')).toBe(false);
    expect(isSetAsideName('ployz-networking.stale-0123')).toBe(false);
    expect(isSetAsideName('.stale-0123456789ab')).toBe(false);
    expect(isSetAsideName('ployz-demo-web.stale-XYZ456789abc')).toBe(false);
  });
});
