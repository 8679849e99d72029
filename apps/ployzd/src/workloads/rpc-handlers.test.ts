/**
 * The participant's deploy handlers refuse what they were not asked to trust: crafted bodies
 * sent by a real RPC client (no client-side checks) over a real nats-server, answered by the
 * handlers the daemon mounts, with the real Docker engine behind them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LABELS, workloadLabels } from '@ployz/identity';
import { defineCommands, deployCommands, RpcClient, RpcServer } from '@ployz/protocol';
import { type DockerScope, dockerScope, type NatsServer, startNats } from '@ployz/testkit';
import { parseManifest } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LocalVolumes } from '../storage/volumes.ts';
import { systemClock } from './clock.ts';
import { DockerWorkloads } from './docker-workloads.ts';
import { assertUnderRoot, deployRpcHandlers } from './rpc-handlers.ts';

const scope = { installation: 'inst', authority: 'auth-default' };
/** What an attacker on the bus sends: anything, unchecked by the client. */
const raw = defineCommands({
  deploy_start: { request: z.unknown(), response: z.unknown() },
  deploy_stop: { request: z.unknown(), response: z.unknown() },
  deploy_ready: { request: z.unknown(), response: z.unknown() },
});

let nats: NatsServer;
let nc: NatsConnection;
let docker: DockerScope;
let server: RpcServer<typeof deployCommands>;
let client: RpcClient<typeof raw>;
let stateDir: string;
let volumesRoot: string;
let prefix: string;

const serviceSpec = (over: Record<string, unknown> = {}) => {
  const [svc] = parseManifest(
    `namespace = "shop"
[[volumes]]
name = "data"
[[services]]
name = "web"
image = "ployz/hello:latest"
env = { PORT = "8080" }
stop_grace = "1s"
[[services.mounts]]
volume = "data"
target = "/data"
`,
    { filename: 'deploy.toml' },
  ).services;
  return { ...svc, ...over };
};

const startBody = (service: Record<string, unknown>, instance = 'shop-web-0-aaaa0000') => ({
  namespace: 'shop',
  service,
  volumes: [
    { name: 'data', quota_bytes: null, scope: 'single', owner: null, mode: null, keep_snapshots: 10 },
  ],
  revision: 'rev-0123456789abcdef',
  deploy: 'dep-0000000000test0000',
  instance,
  slot: 0,
  machine: 'm1',
});

async function containersNamed(fragment: string) {
  const all = await docker.docker.listContainers({ all: true, filters: { name: [`${prefix}${fragment}`] } });
  return all;
}

async function running(id: string): Promise<boolean> {
  return (await docker.docker.getContainer(id).inspect()).State.Running;
}

/** A container the test plants by hand (not through the handlers), sleeping. */
async function plant(name: string, labels: Record<string, string>) {
  const c = await docker.run({
    name: `${prefix}${name}`,
    Image: 'ployz/hello:latest',
    Env: ['PORT=8080'],
    Labels: labels,
    HostConfig: { NetworkMode: 'none' },
  });
  return c.id;
}

const identity = (namespace: string, service: string, instance: string, machine = 'm1') => ({
  ...workloadLabels({
    namespace,
    service,
    slot: 0,
    revision: 'rev-0123456789abcdef',
    deploy: 'dep-0000000000test0000',
    instance,
    machine,
  }),
});

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'ployz-rpc-handlers-'));
  volumesRoot = join(stateDir, 'volumes');
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  docker = await dockerScope('rpc-handlers');
  prefix = `ployz-${docker.id}-`;
  const bridge = `ployz-t-${docker.id}`.slice(0, 60);
  const third = 100 + ((randomBytes(1)[0] ?? 0) % 100);
  await docker.createNetwork({
    Name: bridge,
    IPAM: { Config: [{ Subnet: `10.247.${third}.0/24`, Gateway: `10.247.${third}.1` }] },
  });
  const workloads = new DockerWorkloads(
    docker.docker,
    { containerPrefix: prefix, bridge, dns: null, extraLabels: { ...docker.labels } },
    systemClock,
  );
  server = new RpcServer({ nc, scope, machine: 'm1', commands: deployCommands }).handleAll(
    deployRpcHandlers({
      workloads: () => workloads,
      docker: () => docker.docker,
      volumes: () => LocalVolumes.of({ kind: 'dir', root: volumesRoot }, () => docker.docker),
    }),
  );
  server.start();
  await nc.flush();
  client = new RpcClient({ nc, scope, commands: raw, timeoutMs: 20_000 });
});

afterAll(async () => {
  await server?.stop();
  await nc?.close();
  await docker?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
  await rm(stateDir, { recursive: true, force: true });
});

describe('deploy_start refuses what the manifest would refuse, and creates nothing', () => {
  it('a volume name with ../ is RPC_BAD_REQUEST at its path; no container, no directory', async () => {
    const spec = serviceSpec();
    const bad = {
      ...spec,
      mounts: [{ kind: 'volume', volume: '../../escape', target: '/data', read_only: false }],
    };
    await expect(client.call('m1', 'deploy_start', startBody(bad))).rejects.toMatchObject({
      code: 'RPC_BAD_REQUEST',
      details: { path: 'service.mounts.0.volume' },
    });
    expect(await containersNamed('shop-web-')).toEqual([]);
    expect(existsSync(join(stateDir, 'escape'))).toBe(false);
    expect(existsSync(volumesRoot)).toBe(false);
  });

  it('a service name that is not a DNS label is RPC_BAD_REQUEST; no container', async () => {
    const bad = serviceSpec({ name: 'Web_Admin' });
    await expect(
      client.call('m1', 'deploy_start', startBody(bad, 'shop-web-0-bbbb0000')),
    ).rejects.toMatchObject({ code: 'RPC_BAD_REQUEST', details: { path: 'service.name' } });
    expect(await containersNamed('shop-')).toEqual([]);
  });

  it('a volume directory that is a symlink out of the root is RPC_PATH_ESCAPE; no container', async () => {
    const outside = join(stateDir, 'outside');
    await mkdir(outside, { recursive: true });
    await mkdir(join(volumesRoot, 'shop'), { recursive: true });
    await symlink(outside, join(volumesRoot, 'shop', 'data'));
    await expect(
      client.call('m1', 'deploy_start', startBody(serviceSpec(), 'shop-web-0-cccc0000')),
    ).rejects.toMatchObject({ code: 'RPC_PATH_ESCAPE', details: { path: 'service.mounts.0.volume' } });
    expect(await containersNamed('shop-')).toEqual([]);
    await rm(join(volumesRoot, 'shop', 'data'));
  });

  it('a mount target that would smuggle bind options is RPC_BAD_REQUEST; no container', async () => {
    const spec = serviceSpec();
    const bad = {
      ...spec,
      mounts: [{ kind: 'volume', volume: 'data', target: '/data:/host-etc', read_only: false }],
    };
    await expect(
      client.call('m1', 'deploy_start', startBody(bad, 'shop-web-0-ffff0000')),
    ).rejects.toMatchObject({ code: 'RPC_BAD_REQUEST', details: { path: 'service.mounts.0.target' } });
    expect(await containersNamed('shop-')).toEqual([]);
  });

  it('a body for another machine is RPC_WRONG_MACHINE; no container', async () => {
    const body = { ...startBody(serviceSpec(), 'shop-web-0-dddd0000'), machine: 'm2' };
    await expect(client.call('m1', 'deploy_start', body)).rejects.toMatchObject({
      code: 'RPC_WRONG_MACHINE',
    });
    expect(await containersNamed('shop-')).toEqual([]);
  });

  it('a valid body starts the container, its volume under the root', async () => {
    const started = (await client.call(
      'm1',
      'deploy_start',
      startBody(serviceSpec(), 'shop-web-0-eeee0000'),
    )) as { container_id: string };
    const info = await docker.docker.getContainer(started.container_id).inspect();
    expect(info.HostConfig.Binds).toEqual([`${join(volumesRoot, 'shop', 'data')}:/data`]);
    expect(existsSync(join(volumesRoot, 'shop', 'data'))).toBe(true);
    await client.call('m1', 'deploy_stop', {
      namespace: 'shop',
      service: 'web',
      instance: 'shop-web-0-eeee0000',
      machine: 'm1',
      stop_grace_ms: 0,
    });
    expect(await containersNamed('shop-')).toEqual([]);
  });
});

describe('deploy_stop acts only on managed workloads of the namespace asked about', () => {
  it('a container of another namespace whose name collides is refused and keeps running', async () => {
    // The container under instance x1's name is labelled for namespace "a-b", not "a".
    const id = await plant('x1', identity('a-b', 'c', 'x1'));
    await expect(
      client.call('m1', 'deploy_stop', {
        namespace: 'a',
        service: 'b-c',
        instance: 'x1',
        machine: 'm1',
        stop_grace_ms: 0,
      }),
    ).rejects.toMatchObject({ code: 'RPC_NOT_MANAGED' });
    expect(await running(id)).toBe(true);
  });

  it('an unmanaged container under a workload name is refused and keeps running', async () => {
    const labels = { ...identity('u', 'web', 'x2') };
    delete (labels as Record<string, string>)[LABELS.managed];
    const id = await plant('x2', labels);
    await expect(
      client.call('m1', 'deploy_stop', {
        namespace: 'u',
        service: 'web',
        instance: 'x2',
        machine: 'm1',
        stop_grace_ms: 0,
      }),
    ).rejects.toMatchObject({ code: 'RPC_NOT_MANAGED' });
    expect(await running(id)).toBe(true);
  });

  it('a stop for another machine is refused; for this one the same container is removed', async () => {
    const id = await plant('x3', identity('own', 'web', 'x3'));
    const body = { namespace: 'own', service: 'web', instance: 'x3', machine: 'm2', stop_grace_ms: 0 };
    await expect(client.call('m1', 'deploy_stop', body)).rejects.toMatchObject({
      code: 'RPC_WRONG_MACHINE',
    });
    expect(await running(id)).toBe(true);
    await client.call('m1', 'deploy_stop', { ...body, machine: 'm1' });
    expect(await containersNamed('x3')).toEqual([]);
  });
});

describe('deploy_ready probes only managed workloads of this machine', () => {
  it('an exec readiness aimed at an unmanaged container is refused', async () => {
    const id = await plant('sys-x4', { [LABELS.managed]: 'false' });
    await expect(
      client.call('m1', 'deploy_ready', {
        machine: 'm1',
        instance: { container_id: id, ip: null, name: `${prefix}sys-x4` },
        readiness: {
          kind: 'exec',
          command: ['touch', '/pwned'],
          interval_ms: 100,
          timeout_ms: 1000,
          retries: 1,
          start_period_ms: 0,
        },
      }),
    ).rejects.toMatchObject({ code: 'RPC_NOT_MANAGED' });
  });
});

describe('assertUnderRoot', () => {
  it('refuses paths outside the root as written', async () => {
    await expect(assertUnderRoot('/v', '/v/../etc', 'p')).rejects.toMatchObject({ code: 'RPC_PATH_ESCAPE' });
    await expect(assertUnderRoot('/v', '/etc', 'p')).rejects.toMatchObject({ code: 'RPC_PATH_ESCAPE' });
    await expect(assertUnderRoot('/v', '/v', 'p')).rejects.toMatchObject({ code: 'RPC_PATH_ESCAPE' });
    await expect(assertUnderRoot('/v', 'v/x', 'p')).rejects.toMatchObject({ code: 'RPC_PATH_ESCAPE' });
    await expect(
      assertUnderRoot('/nonexistent-root', '/nonexistent-root/ns/x', 'p'),
    ).resolves.toBeUndefined();
  });
});
