import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { containerOutput, dockerClient, requireImage } from './docker.ts';
import { createNetnsHost, createNetnsLan, sweepNetnsOrphans } from './netns.ts';

/** Alive and not a zombie (an orphan's zombie waits for init to reap it). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

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
    expect(running(sleeper)).toBe(false);
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

  it('connects hosts on a shared LAN directly, and removes the LAN after teardown', async () => {
    let lanPath = '';
    {
      await using lan = await createNetnsLan('pair');
      lanPath = `/var/run/netns/${lan.name}`;
      await using a = await createNetnsHost('lan-a', { lan });
      await using b = await createNetnsHost('lan-b', { lan });
      expect(a.lanAddress).toBeDefined();
      expect(b.lanAddress).toBeDefined();
      expect(a.lanAddress).not.toBe(b.lanAddress);
      await a.run('ping', ['-c', '1', '-W', '2', b.lanAddress ?? '']);
      await b.run('ping', ['-c', '1', '-W', '2', a.lanAddress ?? '']);
      // The route to b's LAN address goes over lan0, not through the machine.
      const route = await a.run('ip', ['route', 'get', b.lanAddress ?? '']);
      expect(route).toContain('dev lan0');
      expect(existsSync(lanPath)).toBe(true);
    }
    expect(existsSync(lanPath)).toBe(false);
  });

  it('sweeps what a killed test process left: its netns and the processes in it', async () => {
    const module = new URL('./netns.ts', import.meta.url).pathname;
    const script = `
      const { createNetnsHost } = await import(${JSON.stringify(module)});
      const host = await createNetnsHost('doomed');
      const sleeper = host.spawn('sleep', ['300']);
      console.log(host.name, sleeper.pid);
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: child.stdout });
      const [first] = await Promise.race([
        new Promise<string[]>((resolve) => lines.once('line', (line) => resolve([line]))),
        new Promise<never>((_, reject) =>
          child.once('exit', (code) => reject(new Error(`child exited ${code}`))),
        ),
      ]);
      const [name, sleeperPid] = (first ?? '').split(' ');
      expect(existsSync(`/var/run/netns/${name}`)).toBe(true);
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // The owner is gone without disposing; the next sweep (ours, or any other test's create)
      // removes its netns and the processes in it.
      await sweepNetnsOrphans();
      expect(existsSync(`/var/run/netns/${name}`)).toBe(false);
      expect(running(Number(sleeperPid))).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
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
    expect(running(pid)).toBe(false);
  }, 180_000);
});
