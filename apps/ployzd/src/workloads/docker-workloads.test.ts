/** Workload containers on the real Docker engine, with the local ployz/hello image. */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../test/fakes/sample-records.ts';
import { bridgeIpam } from './addresses.ts';
import { systemClock } from './clock.ts';
import { DockerWorkloads } from './docker-workloads.ts';

const docker = new Docker({ socketPath: '/var/run/docker.sock', version: 'v1.41' });
const tag = `deploy-${randomBytes(4).toString('hex')}`;
const bridge = `ployz-t-${tag}`;
const third = 100 + ((randomBytes(1)[0] ?? 0) % 100);
let workloads: DockerWorkloads;

const hello = (over: Parameters<typeof service>[1] = {}) =>
  service('web', {
    image: 'ployz/hello:latest',
    env: { HELLO_VERSION: 'v7', PORT: '8080' },
    readiness: {
      kind: 'http',
      path: '/healthz',
      port: 8080,
      interval_ms: 100,
      timeout_ms: 500,
      retries: 30,
      start_period_ms: 0,
    },
    stop_grace_ms: 1000,
    ...over,
  });

const req = (instance: string, svc = hello()) => ({
  namespace: 'shop',
  service: svc,
  revision: 'rev-0123456789abcdef',
  deploy: 'dep-0test',
  instance,
  slot: 0,
  machine: 'm1',
});

beforeAll(async () => {
  await docker.createNetwork({
    Name: bridge,
    Driver: 'bridge',
    IPAM: { Config: [bridgeIpam(`10.244.${third}.0/24`)] },
    Labels: { 'ployz.test': tag },
  });
  workloads = new DockerWorkloads(
    docker,
    { containerPrefix: `ployz-${tag}-`, bridge, dns: null, extraLabels: { 'ployz.test': tag } },
    systemClock,
  );
});

afterAll(async () => {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`ployz.test=${tag}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true });
  }
  for (const n of await docker.listNetworks({ filters: { label: [`ployz.test=${tag}`] } }))
    await docker.getNetwork(n.Id).remove();
});

describe('DockerWorkloads', () => {
  it('starts a labelled container on the bridge, waits for http readiness, stops and removes it', async () => {
    const started = await workloads.start(req('shop-web-0-aaaa'));
    expect(started.ip).toMatch(new RegExp(`^10\\.244\\.${third}\\.`));
    const info = await docker.getContainer(started.container_id).inspect();
    expect(info.Name).toBe(`/ployz-${tag}-shop-web-0-aaaa`);
    expect(info.Config.Labels).toMatchObject({
      'ployz.managed': 'true',
      'ployz.kind': 'workload',
      'ployz.namespace': 'shop',
      'ployz.service': 'web',
      'ployz.slot': '0',
      'ployz.revision': 'rev-0123456789abcdef',
      'ployz.deploy': 'dep-0test',
      'ployz.instance': 'shop-web-0-aaaa',
      'ployz.machine': 'm1',
    });
    expect(info.Config.Env).toEqual(
      expect.arrayContaining(['HELLO_VERSION=v7', 'PLOYZ_INSTANCE=shop-web-0-aaaa']),
    );
    expect(info.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    await workloads.waitReady({ ...started, name: 'web' }, hello().readiness, new AbortController().signal);
    const body = await (await fetch(`http://${started.ip}:8080/`)).text();
    expect(body).toContain('(version v7)');
    // A retried start adopts the same container.
    expect((await workloads.start(req('shop-web-0-aaaa'))).container_id).toBe(started.container_id);
    await workloads.stop({
      namespace: 'shop',
      service: 'web',
      instance: 'shop-web-0-aaaa',
      machine: 'm1',
      stop_grace_ms: 1000,
    });
    await expect(docker.getContainer(started.container_id).inspect()).rejects.toMatchObject({
      statusCode: 404,
    });
    // Stopping again is success.
    await workloads.stop({
      namespace: 'shop',
      service: 'web',
      instance: 'shop-web-0-aaaa',
      machine: 'm1',
      stop_grace_ms: 1000,
    });
  });

  it('gives each workload a fixed address of its own, kept while stopped and back on start, released on removal', async () => {
    const host = (ip: string | null) => Number(ip?.split('.')[3]);
    const [a, b] = await Promise.all([
      workloads.start(req('shop-web-0-addr')),
      workloads.start(req('shop-web-1-addr')),
    ]);
    expect(a.ip).not.toBe(b.ip);
    for (const s of [a, b]) {
      expect(s.ip).toMatch(new RegExp(`^10\\.244\\.${third}\\.`));
      expect(host(s.ip)).toBeGreaterThanOrEqual(16); // never a system address (.1 gateway, .2 networking)
      expect(host(s.ip)).toBeLessThan(240); // never in Docker's own dynamic range
      const info = await docker.getContainer(s.container_id).inspect();
      expect(info.NetworkSettings.Networks[bridge]?.IPAMConfig?.IPv4Address).toBe(s.ip);
    }
    // As during an engine restart: a stopped workload's address is not handed to another one,
    // and when it starts again it has its old address back.
    await docker.getContainer(a.container_id).stop({ t: 1 });
    const c = await workloads.start(req('shop-web-2-addr'));
    expect([a.ip, b.ip]).not.toContain(c.ip);
    await docker.getContainer(a.container_id).start();
    const again = await docker.getContainer(a.container_id).inspect();
    expect(again.NetworkSettings.Networks[bridge]?.IPAddress).toBe(a.ip);
    // A container Docker addresses itself lands in its dynamic range, never on a system address.
    const foreign = await docker.createContainer({
      name: `ployz-${tag}-foreign-dyn`,
      Image: 'ployz/hello:latest',
      Labels: { 'ployz.test': tag },
      HostConfig: { NetworkMode: bridge },
    });
    await foreign.start();
    const foreignIp = (await foreign.inspect()).NetworkSettings.Networks[bridge]?.IPAddress ?? null;
    expect(host(foreignIp)).toBeGreaterThanOrEqual(240);
    // Removing an instance releases its address for the next one.
    const stopB = {
      namespace: 'shop',
      service: 'web',
      instance: 'shop-web-1-addr',
      machine: 'm1',
      stop_grace_ms: 1000,
    };
    await workloads.stop(stopB);
    expect((await workloads.start(req('shop-web-3-addr'))).ip).toBe(b.ip);
  });

  it('readiness that never passes → DEPLOY_READINESS_FAILED; exec and tcp checks work', async () => {
    const bad = hello({
      readiness: {
        kind: 'http',
        path: '/nope',
        port: 8080,
        interval_ms: 100,
        timeout_ms: 300,
        retries: 3,
        start_period_ms: 1500,
        start_timeout_ms: 1500,
      },
    });
    const s = await workloads.start(req('shop-web-0-bbbb', bad));
    // Listening first, so the failing check below always gets an answer (404), however slow the start.
    await workloads.waitReady(
      { ...s, name: 'web' },
      { kind: 'tcp', port: 8080, interval_ms: 100, timeout_ms: 500, retries: 30, start_period_ms: 0 },
      new AbortController().signal,
    );
    await expect(
      workloads.waitReady({ ...s, name: 'web' }, bad.readiness, new AbortController().signal),
    ).rejects.toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      // The candidate is removed after this; its last log lines travel with the error.
      message: expect.stringContaining('log line(s):\n  | {"level":"info","msg":"listening"'),
      details: { last: 'HTTP 404', log_tail: [expect.stringContaining('"msg":"listening"')] },
    });
    await workloads.waitReady(
      { ...s, name: 'web' },
      {
        kind: 'exec',
        command: ['node', '-e', 'process.exit(0)'],
        interval_ms: 100,
        timeout_ms: 3000,
        retries: 3,
        start_period_ms: 0,
      },
      new AbortController().signal,
    );
    await workloads.waitReady(
      { ...s, name: 'web' },
      { kind: 'tcp', port: 8080, interval_ms: 100, timeout_ms: 500, retries: 30, start_period_ms: 0 },
      new AbortController().signal,
    );
    await expect(
      workloads.waitReady(
        { ...s, name: 'web' },
        {
          kind: 'exec',
          command: ['node', '-e', 'process.exit(3)'],
          interval_ms: 50,
          timeout_ms: 3000,
          retries: 2,
          start_period_ms: 0,
          start_timeout_ms: 500,
        },
        new AbortController().signal,
      ),
    ).rejects.toMatchObject({ details: { last: 'exit code 3' } });
  });

  it('a container that exits fails readiness at once; a missing image is IMAGE_MISSING', async () => {
    const crash = hello({
      entrypoint: ['node', '-e', 'console.error("DATABASE_URL is not set"); process.exit(4)'],
      restart: 'never',
    });
    const s = await workloads.start(req('shop-web-0-cccc', crash));
    const failed = await workloads
      .waitReady({ ...s, name: 'web' }, crash.readiness, new AbortController().signal)
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(failed).toMatchObject({
      code: 'DEPLOY_READINESS_FAILED',
      message: expect.stringContaining('exited with code 4'),
      details: { log_tail: ['DATABASE_URL is not set'] },
    });
    expect((failed as Error).message).toContain('Its last 1 log line(s):\n  | DATABASE_URL is not set');
    // Without a readiness check too: a container that stopped right after start says why.
    const quiet = await workloads.start(req('shop-web-0-cccd', crash));
    await docker.getContainer(quiet.container_id).wait();
    await expect(
      workloads.waitReady({ ...quiet, name: 'web' }, null, new AbortController().signal),
    ).rejects.toMatchObject({ details: { log_tail: ['DATABASE_URL is not set'] } });
    await expect(
      workloads.start(req('shop-web-0-dddd', hello({ image: `ployz/absent-${tag}:1` }))),
    ).rejects.toMatchObject({ code: 'IMAGE_MISSING' });
  });

  it('never touches a foreign container that holds the name', async () => {
    const name = `ployz-${tag}-shop-web-0-eeee`;
    const foreign = await docker.createContainer({
      name,
      Image: 'ployz/hello:latest',
      Labels: { 'ployz.test': tag },
    });
    await expect(workloads.start(req('shop-web-0-eeee'))).rejects.toMatchObject({ code: 'NAME_COLLISION' });
    await expect(
      workloads.stop({
        namespace: 'shop',
        service: 'web',
        instance: 'shop-web-0-eeee',
        machine: 'm1',
        stop_grace_ms: 0,
      }),
    ).rejects.toMatchObject({
      code: 'NAME_COLLISION',
    });
    expect((await foreign.inspect()).Id).toBe(foreign.id);
  });
});
