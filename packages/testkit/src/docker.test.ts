import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  connectDocker,
  dockerScope,
  removeByLabel,
  requireImage,
  sweepOrphans,
  TEST_LABEL,
  TEST_OWNER_PID_LABEL,
} from './docker.ts';

const IMAGE = 'ployz/rootfs:bookworm';

async function labelled(scopeId: string) {
  const docker = await connectDocker();
  const filters = { label: [`${TEST_LABEL}=${scopeId}`] };
  const containers = await docker.listContainers({ all: true, filters });
  const networks = await docker.listNetworks({ filters });
  return { containers: containers.length, networks: networks.length };
}

describe('dockerScope', () => {
  it('labels what it creates and removes it all when the test body throws', async () => {
    const docker = await connectDocker();
    await requireImage(docker, IMAGE);
    let scopeId = '';
    let containerId = '';
    const failingTest = async () => {
      await using scope = await dockerScope('fails');
      scopeId = scope.id;
      const network = await scope.createNetwork({ Name: `${scope.id}-net` });
      const container = await scope.run({
        Image: IMAGE,
        Cmd: ['sleep', '300'],
        HostConfig: { NetworkMode: (await network.inspect()).Name },
      });
      containerId = container.id;
      const info = await container.inspect();
      expect(info.State.Running).toBe(true);
      expect(info.Config.Labels[TEST_LABEL]).toBe(scope.id);
      expect(await labelled(scope.id)).toEqual({ containers: 1, networks: 1 });
      throw new Error('the test failed');
    };
    await expect(failingTest()).rejects.toThrow('the test failed');
    expect(scopeId).not.toBe('');
    expect(await labelled(scopeId)).toEqual({ containers: 0, networks: 0 });
    await expect(docker.getContainer(containerId).inspect()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('leaves containers of other scopes alone', async () => {
    await using mine = await dockerScope('mine');
    await using other = await dockerScope('other');
    await mine.run({ Image: IMAGE, Cmd: ['sleep', '300'] });
    await other.run({ Image: IMAGE, Cmd: ['sleep', '300'] });
    const report = await mine.cleanup();
    expect(report.containers).toBe(1);
    expect(await labelled(mine.id)).toEqual({ containers: 0, networks: 0 });
    expect(await labelled(other.id)).toEqual({ containers: 1, networks: 0 });
  });

  it('sweeps containers whose owning test process is dead, and only those', async () => {
    const docker = await connectDocker();
    await using live = await dockerScope('live');
    await live.run({ Image: IMAGE, Cmd: ['sleep', '300'] });
    // A container owned by a "test process" we control: it stays while that process lives.
    const owner = spawn('sleep', ['300']);
    const orphanScope = `orphan-${process.pid}-${Date.now()}`;
    const orphan = await docker.createContainer({
      Image: IMAGE,
      Cmd: ['sleep', '300'],
      Labels: { [TEST_LABEL]: orphanScope, [TEST_OWNER_PID_LABEL]: String(owner.pid) },
    });
    try {
      await sweepOrphans(docker);
      expect(await labelled(orphanScope)).toEqual({ containers: 1, networks: 0 });
      // The owner dies without cleaning up: the next sweep (ours, or any other scope's) removes it.
      const exited = new Promise((resolve) => owner.once('exit', resolve));
      owner.kill('SIGKILL');
      await exited;
      await sweepOrphans(docker);
      expect(await labelled(orphanScope)).toEqual({ containers: 0, networks: 0 });
      expect(await labelled(live.id)).toEqual({ containers: 1, networks: 0 });
    } finally {
      owner.kill('SIGKILL');
      await removeByLabel(docker, `${TEST_LABEL}=${orphanScope}`);
      await orphan.remove({ force: true }).catch(() => {});
    }
  });

  it('says how to build an image that is missing', async () => {
    const docker = await connectDocker();
    await expect(requireImage(docker, 'ployz/does-not-exist:nope')).rejects.toThrow('bash scripts/images.sh');
  });
});
