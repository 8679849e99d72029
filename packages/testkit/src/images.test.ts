// The images built by scripts/images.sh: every app image prints its version, hello answers HTTP,
// networking brings wg0 up with wireguard-go and shares it with containers joined to its netns,
// nats serves JetStream. Needs the images (bash scripts/images.sh; scripts/test.sh builds them first).
import { readFileSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { containerOutput, type DockerScope, dockerScope, requireImage } from './docker.ts';
import { waitForPort } from './nats.ts';

const APPS = [
  { dir: 'ployzd', image: 'ployz/ployzd' },
  { dir: 'ployz-gateway', image: 'ployz/gateway' },
  { dir: 'ployz-dns', image: 'ployz/dns' },
  { dir: 'ployzctl', image: 'ployz/ployzctl' },
];

function appVersion(dir: string): string {
  const pkg: unknown = JSON.parse(
    readFileSync(new URL(`../../../apps/${dir}/package.json`, import.meta.url), 'utf8'),
  );
  if (typeof pkg === 'object' && pkg !== null && 'version' in pkg && typeof pkg.version === 'string') {
    return pkg.version;
  }
  throw new Error(`apps/${dir}/package.json has no version`);
}

/** Runs a container to completion and returns its exit code and combined output. */
async function runToEnd(scope: DockerScope, create: Docker.ContainerCreateOptions) {
  await requireImage(scope.docker, create.Image ?? '');
  const container = await scope.run(create);
  const { StatusCode } = (await container.wait()) as { StatusCode: number };
  const { stdout, stderr } = await containerOutput(container);
  return { code: StatusCode, output: stdout + stderr };
}

async function publishedPort(container: Docker.Container, port: string): Promise<number> {
  const info = await container.inspect();
  const binding = info.NetworkSettings.Ports[port]?.[0];
  if (!binding) throw new Error(`${port} is not published`);
  return Number(binding.HostPort);
}

async function waitForLog(container: Docker.Container, text: string, timeoutMs = 20_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout, stderr } = await containerOutput(container);
    const logs = stdout + stderr;
    if (logs.includes(text)) return logs;
    const state = (await container.inspect()).State;
    if (!state.Running)
      throw new Error(`container exited (${state.ExitCode}) before logging "${text}": ${logs}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" in the logs after ${timeoutMs} ms: ${logs}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('app images', () => {
  for (const app of APPS) {
    it(`${app.image} --version prints ${app.dir}'s version`, async () => {
      await using scope = await dockerScope(`image-${app.dir}`);
      const { code, output } = await runToEnd(scope, { Image: app.image, Cmd: ['--version'] });
      expect(code).toBe(0);
      expect(output).toContain(appVersion(app.dir));
    });
  }

  it('every released image carries the OCI version, revision and source labels and its version tags', async () => {
    await using scope = await dockerScope('image-labels');
    const version = appVersion('ployzd');
    for (const name of ['base', 'nats', 'networking', 'ployzd', 'gateway', 'dns', 'ployzctl']) {
      const info = await scope.docker.getImage(`ployz/${name}:latest`).inspect();
      const labels = info.Config.Labels ?? {};
      expect(labels['org.opencontainers.image.version'], name).toBe(version);
      const revision = labels['org.opencontainers.image.revision'] ?? '';
      expect(revision, name).toMatch(/^[0-9a-f]{40}(-dirty)?$/);
      expect(labels['org.opencontainers.image.source'], name).toMatch(/\S/);
      const short = `${revision.slice(0, 12)}${revision.endsWith('-dirty') ? '-dirty' : ''}`;
      expect(info.RepoTags, name).toEqual(
        expect.arrayContaining([`ployz/${name}:${version}`, `ployz/${name}:${version}-${short}`]),
      );
    }
  });

  it('gateway and dns run as a non-root user that may bind privileged ports', async () => {
    await using scope = await dockerScope('image-bind');
    for (const image of ['ployz/gateway', 'ployz/dns']) {
      const { code, output } = await runToEnd(scope, {
        Image: image,
        Entrypoint: ['node', '-e'],
        Cmd: [
          `require('net').createServer().listen(80, function () { console.log('uid', process.getuid(), 'port', this.address().port); this.close(); })`,
        ],
      });
      expect(output.trim()).toBe('uid 10001 port 80');
      expect(code).toBe(0);
    }
  });
});

describe('ployz/hello', () => {
  it('answers GET / with its message and version, and /healthz with 200', async () => {
    await using scope = await dockerScope('image-hello');
    await requireImage(scope.docker, 'ployz/hello');
    const container = await scope.run({
      Image: 'ployz/hello',
      Env: ['HELLO_MESSAGE=greetings from the images test', 'HELLO_VERSION=v7'],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    await waitForLog(container, '"listening"');
    const port = await publishedPort(container, '8080/tcp');
    await waitForPort(port);
    const root = await fetch(`http://127.0.0.1:${port}/`);
    expect(root.status).toBe(200);
    expect(await root.text()).toMatch(/^greetings from the images test \(version v7\) from \S+\n$/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const missing = await fetch(`http://127.0.0.1:${port}/nope`);
    expect(missing.status).toBe(404);
  });
});

describe('ployz/networking', () => {
  it('brings wg0 up with wireguard-go and shares it with containers in its netns', async () => {
    await using scope = await dockerScope('image-networking');
    await requireImage(scope.docker, 'ployz/networking');
    const net = await scope.run({
      Image: 'ployz/networking',
      Env: ['PLOYZ_WG_ADDRESSES=fd8c:1::1/128,10.233.0.1/32', 'PLOYZ_WG_LISTEN_PORT=51999'],
      HostConfig: {
        CapAdd: ['NET_ADMIN'],
        Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
        Sysctls: { 'net.ipv6.conf.all.disable_ipv6': '0' },
      },
    });
    const logs = await waitForLog(net, '"msg":"ready"');
    expect(logs).toMatch(/"public_key":"[A-Za-z0-9+/]{43}="/);
    expect(logs).toContain('"listen_port":51999');

    // A sibling in network_mode container:<networking> sees wg0 with its addresses (the model of
    // gateway/dns/nats).
    const { code, output } = await runToEnd(scope, {
      Image: 'ployz/networking',
      Entrypoint: ['ip', '-o', 'address', 'show', 'dev', 'wg0'],
      HostConfig: { NetworkMode: `container:${net.id}` },
    });
    expect(code).toBe(0);
    expect(output).toContain('10.233.0.1/32');
    expect(output).toContain('fd8c:1::1/128');

    // SIGTERM: the entry removes the interface and exits 0.
    await net.stop({ t: 10 });
    expect((await net.inspect()).State.ExitCode).toBe(0);
  });
});

describe('ployz/nats', () => {
  it('serves JetStream', async () => {
    await using scope = await dockerScope('image-nats');
    await requireImage(scope.docker, 'ployz/nats');
    const container = await scope.run({
      Image: 'ployz/nats',
      ExposedPorts: { '4222/tcp': {} },
      HostConfig: { PortBindings: { '4222/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] } },
    });
    await waitForLog(container, 'Server is ready');
    const port = await publishedPort(container, '4222/tcp');
    const nc = await connect({ servers: `nats://127.0.0.1:${port}` });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.getAccountInfo();
      expect(info.limits).toBeDefined();
    } finally {
      await nc.close();
    }
  });
});
