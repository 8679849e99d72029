/**
 * The engine on real parts: nats-server (JetStream store), machine-command RPC, and the Docker
 * engine with the local ployz/hello image. The daemon/CLI path is covered by e2e/test/deploy*.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { InstallationKey } from '@ployz/identity';
import { RpcServer } from '@ployz/protocol';
import { Store } from '@ployz/store';
import { type DockerScope, dockerScope, type NatsServer, startNats } from '@ployz/testkit';
import { parseManifest } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { machine } from '../../test/fakes/sample-records.ts';
import { machineCommands } from '../daemon/machine-commands.ts';
import { measureCapacity } from '../machine/capacity.ts';
import { LocalVolumes } from '../storage/volumes.ts';
import { DockerWorkloads } from '../workloads/docker-workloads.ts';
import { deployRpcHandlers } from '../workloads/rpc-handlers.ts';
import { deployCommands, RpcMachineAgent } from './adapters/rpc-agent.ts';
import { storeDeployPort } from './adapters/store-port.ts';
import { DeployEngine, newDeployId, newInstanceId } from './engine.ts';
import type { DeployEvent } from './model/events.ts';
import { deployManifestOf, sealedRevisionCodec } from './model/manifest.ts';
import { systemClock } from './ports.ts';

const scope = { installation: 'local', authority: 'auth-default' };
let nats: NatsServer;
let nc: NatsConnection;
let store: Store;
let docker: DockerScope;
const agentCommands = { ...machineCommands, ...deployCommands };
let agentRpc: RpcServer<typeof agentCommands>;
let engine: DeployEngine;
let stateDir: string;
const key = InstallationKey.generate();
const third = 100 + ((randomBytes(1)[0] ?? 0) % 100);

function manifest(version: string, extra = '') {
  const text = `
namespace = "live"
[[services]]
name = "web"
image = "ployz/hello:latest"
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${version}", API_TOKEN = "s3cret-${version}" }
stop_grace = "1s"
${extra}
[[services.routes]]
http = { hostnames = ["web.localhost"], path = "/" }
[services.readiness]
http = { path = "/healthz" }
interval = "100ms"
retries = 50
`;
  return deployManifestOf(parseManifest(text, { filename: 'deploy.toml' }), key, join(stateDir, 'volumes'));
}

async function ipOf(svc: string) {
  const release = (await store.releases.get('live', svc))?.value;
  const inst = release?.slots[0];
  if (!inst) return null;
  return (await store.instances.get('live', svc, inst.instance))?.value.ip ?? null;
}

beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'ployz-deploy-live-'));
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  store = await Store.fromConnection(nc, scope);
  await store.machines.create(machine('m1'));
  await store.machines.create(machine('m-gone')); // no agent answers for this one
  docker = await dockerScope('deploy-live');
  const bridge = `ployz-t-${docker.id}`.slice(0, 60);
  await docker.docker.createNetwork({
    Name: bridge,
    IPAM: { Config: [{ Subnet: `10.245.${third}.0/24`, Gateway: `10.245.${third}.1` }] },
    Labels: { ...docker.labels },
  });
  const containerPrefix = `ployz-${docker.id}-`;
  const workloads = new DockerWorkloads(
    docker.docker,
    { containerPrefix, bridge, dns: null, extraLabels: { ...docker.labels } },
    systemClock,
  );
  const volumes = LocalVolumes.of({ kind: 'dir', root: join(stateDir, 'volumes') }, () => docker.docker);
  // The same registries and handlers the daemon mounts (machine commands + the deploy plugin's).
  agentRpc = new RpcServer({ nc, scope, machine: 'm1', commands: agentCommands })
    .handleAll(
      deployRpcHandlers({
        workloads: () => workloads,
        docker: () => docker.docker,
        volumes: () => volumes,
      }),
    )
    .handle('capacity', () => measureCapacity(stateDir));
  agentRpc.start();
  engine = new DeployEngine({
    store: storeDeployPort(store),
    agent: new RpcMachineAgent(nc, scope.installation, scope.authority),
    codec: sealedRevisionCodec(key, join(stateDir, 'volumes')),
    clock: systemClock,
    containerPrefix,
    machineId: 'm1',
    processNonce: 'live',
    drainMs: 200,
    newDeployId: () => newDeployId(),
    newInstanceId,
  });
});

afterAll(async () => {
  await agentRpc?.stop();
  await nc?.close();
  await docker?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
  await rm(stateDir, { recursive: true, force: true });
});

describe('deploy engine on nats + docker', () => {
  let firstDeploy = '';

  it('deploys, serving the revision; the machine that does not answer gets nothing', async () => {
    const events: DeployEvent[] = [];
    const r = await engine.apply(manifest('v1'), { actor: 'test' }, (e) => events.push(e));
    expect(r.status?.state).toBe('committed');
    firstDeploy = r.status?.deploy_id ?? '';
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'machine', machine: 'm-gone', available: false }),
    );
    const ip = await ipOf('web');
    expect(await (await fetch(`http://${ip}:8080/`)).text()).toContain('(version v1)');
    const rev = (await store.releases.get('live', 'web'))?.value.revision as string;
    const stored = await store.revisions.get('live', 'web', rev);
    expect(JSON.stringify(stored?.value.spec)).not.toContain('s3cret'); // env sealed at rest
    const snap = await store.routing.snapshot();
    expect(snap.releases.map((x) => x.service)).toEqual(['web']);
    expect(snap.instances.filter((i) => i.ready)).toHaveLength(1);
  });

  it('redeploying the same manifest touches nothing', async () => {
    const before = await docker.docker.listContainers({
      all: true,
      filters: { label: [`ployz.test=${docker.id}`] },
    });
    const r = await engine.apply(manifest('v1'), { actor: 'test' });
    expect(r.noop).toBe(true);
    const after = await docker.docker.listContainers({
      all: true,
      filters: { label: [`ployz.test=${docker.id}`] },
    });
    expect(after.map((c) => [c.Id, c.State])).toEqual(before.map((c) => [c.Id, c.State]));
  });

  it('a new revision replaces the old instance; a held lease is refused; rollback restores v1', async () => {
    const oldIp = await ipOf('web');
    const r = await engine.apply(manifest('v2'), { actor: 'test' });
    expect(r.plan.services[0]?.action).toBe('replace');
    const ip = await ipOf('web');
    expect(ip).not.toBe(oldIp);
    expect(await (await fetch(`http://${ip}:8080/`)).text()).toContain('(version v2)');
    const running = await docker.docker.listContainers({
      filters: { label: [`ployz.test=${docker.id}`, 'ployz.kind=workload'] },
    });
    expect(running).toHaveLength(1);

    const held = await store.leases.acquire(store.deployLockKey('live'), {
      owner: 'someone-else',
      ttlMs: 60_000,
    });
    await expect(engine.apply(manifest('v3'), { actor: 'test' })).rejects.toMatchObject({
      code: 'DEPLOY_LOCK_HELD',
      details: { holder: 'someone-else' },
    });
    await store.leases.release(held);

    const rb = await engine.rollback(firstDeploy, 'test');
    expect(rb.status).toMatchObject({ state: 'committed', rollback_of: firstDeploy });
    expect(await (await fetch(`http://${await ipOf('web')}:8080/`)).text()).toContain('(version v1)');
    const commits = await store.commits.list('live');
    expect(commits.at(-1)?.commit.rollback_of).toBe(firstDeploy);
    expect((await engine.preview(manifest('v1'))).changed).toBe(false);
  });

  it('failing readiness → failed, the old version still serving, candidates gone', async () => {
    const ip = await ipOf('web');
    const bad = manifest(
      'v9',
      'command = ["--no-such-flag"]\nentrypoint = ["node", "-e", "setInterval(() => {}, 1000)"]',
    );
    bad.services[0] = {
      ...bad.services[0],
      readiness: {
        kind: 'http',
        path: '/healthz',
        port: 8080,
        interval_ms: 100,
        timeout_ms: 200,
        retries: 3,
        start_period_ms: 0,
        start_timeout_ms: 1000,
      },
    } as never;
    await expect(engine.apply(bad, { actor: 'test' })).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      details: { state: 'failed' },
    });
    expect(await ipOf('web')).toBe(ip);
    expect(await (await fetch(`http://${ip}:8080/`)).text()).toContain('(version v1)');
    const workloads = await docker.docker.listContainers({
      all: true,
      filters: { label: [`ployz.test=${docker.id}`, 'ployz.kind=workload'] },
    });
    expect(workloads).toHaveLength(1);
    const latest = (await engine.list({ namespace: 'live' }))[0];
    expect(latest).toMatchObject({ state: 'failed', error: { code: 'DEPLOY_READINESS_FAILED' } });
  });
});
