import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { containerOutput, dockerClient, requireImage } from './docker.ts';
import { createNetnsHost } from './netns.ts';

function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

describe('createNetnsHost', () => {
  it('reaches the machine over its veth and is gone after teardown', async () => {
    let path = '';
    let hostIf = '';
    let sleeper = 0;
    {
      await using host = await createNetnsHost('reach');
      path = host.path;
      hostIf = host.hostInterface;
      expect(existsSync(path)).toBe(true);
      expect(linkExists(hostIf)).toBe(true);

      // ICMP both ways over the veth.
      await host.run('ping', ['-c', '1', '-W', '2', host.hostAddress]);
      const addr = await host.run('ip', ['-4', '-o', 'address', 'show', 'dev', 'eth0']);
      expect(addr).toContain(`${host.address}/30`);

      // TCP from inside the netns to a server in the machine's namespace, bound to the veth address.
      const server = createServer((socket) => socket.end('hello from the machine\n'));
      await new Promise<void>((resolve) => server.listen(0, host.hostAddress, resolve));
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      try {
        const script = `require('net').connect(${port}, '${host.hostAddress}').on('data', (d) => process.stdout.write(d))`;
        const out = await host.run(process.execPath, ['-e', script]);
        expect(out).toBe('hello from the machine\n');
      } finally {
        server.close();
      }

      // A process left running in the netns does not survive teardown.
      const child = host.spawn('sleep', ['300']);
      sleeper = child.pid ?? 0;
      expect(sleeper).toBeGreaterThan(0);
    }
    expect(existsSync(path)).toBe(false);
    expect(linkExists(hostIf)).toBe(false);
    expect(() => process.kill(sleeper, 0)).toThrow();
  });

  it('gives concurrent hosts distinct namespaces and addresses', async () => {
    await using a = await createNetnsHost('a');
    await using b = await createNetnsHost('b');
    expect(a.name).not.toBe(b.name);
    expect(a.address).not.toBe(b.address);
    // b's address is not inside a's netns.
    const addrs = await a.run('ip', ['-4', '-o', 'address']);
    expect(addrs).not.toContain(b.address);
  });

  it('runs a dockerd inside the netns whose containers share its network', async () => {
    let socketPath = '';
    let pid = 0;
    {
      await using host = await createNetnsHost('dockerd');
      await using dockerd = await host.startDockerd();
      socketPath = dockerd.socketPath;
      pid = dockerd.pid;
      const { docker } = dockerd;
      const info = await docker.info();
      expect(info.ID).toBeTruthy();
      await requireImage(dockerClient(), 'ployz/rootfs:bookworm');
      await dockerd.loadImages(['ployz/rootfs:bookworm']);
      // Host networking in the inner engine = the netns host's network: eth0 carries its address.
      const container = await docker.createContainer({
        Image: 'ployz/rootfs:bookworm',
        Cmd: ['cat', '/proc/net/fib_trie'],
        HostConfig: { NetworkMode: 'host' },
      });
      await container.start();
      await container.wait();
      const { stdout } = await containerOutput(container);
      expect(stdout).toContain(host.address);
    }
    expect(existsSync(socketPath)).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow();
  });
});
