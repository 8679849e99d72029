import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPloyzError, PloyzError } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, type DeployPlanView, LocalApiClient, LocalApiServer, socketAnswers } from '../src/index.ts';

const AT = '2026-11-21T23:00:00.000Z';
const identity = {
  installation: 'local',
  authority: 'auth-default',
  machine_id: 'm1',
  public_key: `${'A'.repeat(42)}E=`,
  overlay_ip: 'fd00::1',
  subnet: '10.210.1.0/24',
  region: 'default',
  created_at: AT,
};
const plan: DeployPlanView = {
  namespace: 'shop',
  manifest_hash: 'h1',
  changed: true,
  services: [
    {
      service: 'web',
      action: 'create',
      revision: 'rev-0123456789abcdef',
      previous_revision: null,
      phase: 'default',
      slots: [{ slot: 0, machine: 'm1', instance: 'web-0', action: 'start' }],
      stops: [],
    },
  ],
  phases: [
    {
      id: 'default',
      index: 0,
      commit_policy: 'end_of_deploy',
      services: ['web'],
      starts: 1,
      does: 'start web',
    },
  ],
  volumes: [],
  images: [],
  rollback_of: null,
  lineage: null,
  summary: { create: 1, replace: 0, update: 0, remove: 0, unchanged: 0, starts: 1, stops: 0 },
};

const promotePlan = {
  from: 1,
  to: 3,
  current_storage: 'm1',
  members: [
    {
      machine: 'm1',
      overlay_ip: 'fd70::1',
      region: 'eu',
      region_role: 'home_data',
      reachable: true,
      healthy: true,
      rtt_ms: 0.4,
      holds_store_now: true,
    },
  ],
  regions: ['eu'],
  rtt_bound_ms: 50,
  assets: [
    {
      asset: 'cp_deploy_commits_auth-default',
      kind: 'stream' as const,
      messages: 60,
      bytes: 9000,
      lastId: 'x',
    },
  ],
  messages: 60,
  bytes: 9000,
  checks: [{ check: 'rtt', machine: 'm1', ok: true, blocking: true, detail: '0.4 ms (bound 50 ms)' }],
  refusal: null,
  promotion: null,
};
const certificate = {
  hostname: 'shop.test',
  wanted: true,
  state: 'failing' as const,
  serial: '0a1b',
  not_before: AT,
  not_after: AT,
  renew_at: AT,
  issued_at: AT,
  directory_url: 'https://ca.test/dir',
  failures: 2,
  last_error: { code: 'ACME_ORDER_FAILED', message: 'shop.test: connect ECONNREFUSED' },
  last_attempt_at: AT,
  next_attempt_at: AT,
  renewer: 'm1',
};

let dir: string;
let socketPath: string;
let server: LocalApiServer;
let client: LocalApiClient;
const seenEventsAbort: boolean[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployz-api-'));
  socketPath = join(dir, 'run', 'ployzd.sock');
  server = new LocalApiServer()
    .implement('machineShow', () => ({ machine: identity, record: null }))
    .implement('machineInit', (input) => {
      if (input.machine_id === 'exists')
        throw new PloyzError('ALREADY_INITIALISED', 'this machine is m1 already');
      return { machine: { ...identity, region: input.region }, reconcile: null, components: [] };
    })
    .implement('deployPreview', (input) => {
      if (input.manifest.includes('bad')) {
        throw new PloyzError('MANIFEST_INVALID', 'service web has no image', {
          details: { file: input.filename },
        });
      }
      return plan;
    })
    .implement('deployApply', async (input, ctx) => {
      ctx.emit({ type: 'plan', plan });
      ctx.emit({ type: 'step', step: 2, name: 'lease', state: 'done', at: AT });
      if (input.manifest.includes('held')) {
        throw new PloyzError('DEPLOY_LOCK_HELD', 'shop is held by m2', { details: { holder: 'm2' } });
      }
      ctx.emit({ type: 'commit', commit_id: 'dep-1.final', kind: 'final', phase: null });
      return { noop: false, plan, status: null };
    })
    .implement('deployList', (input) => (input.namespace === 'none' ? [] : []))
    .implement('certList', () => ({ directory_url: 'https://ca.test/dir', certificates: [certificate] }))
    .implement('certShow', (input) => {
      if (input.hostname === certificate.hostname) return certificate;
      throw new PloyzError('CERT_UNKNOWN', `no route with tls = "auto" asks for ${input.hostname}`, {
        details: { hostname: input.hostname, known: [certificate.hostname] },
      });
    })
    .implement('storagePromotePlan', (input) => {
      if (input.replicas === 2)
        throw new PloyzError('REPLICAS_INVALID', 'never 2', { details: { requested: 2 } });
      return promotePlan;
    })
    .implement('status', () => ({ bogus: true }) as never)
    .implement('events', async (_input, ctx) => {
      let seq = 0;
      while (!ctx.signal.aborted) {
        const event = { type: 'machine_removed', machine_id: `m${++seq}`, deploy_id: null, at: AT } as const;
        ctx.emit({
          seq,
          type: event.type,
          at: AT,
          deploy_id: null,
          namespace: null,
          service: null,
          instance: null,
          machine: event.machine_id,
          event,
        });
        await new Promise((r) => setTimeout(r, 20));
      }
      seenEventsAbort.push(true);
      return { reason: 'client_closed', last_seq: seq };
    });
  await server.listen(socketPath);
  client = new LocalApiClient({ socketPath });
});
afterAll(async () => {
  await client?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<PloyzError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!isPloyzError(e)) throw new Error(`expected PloyzError, got ${String(e)}`);
  return e;
}

describe('local API over a unix socket', () => {
  it('creates the socket with mode 0660', async () => {
    expect((await stat(socketPath)).mode & 0o777).toBe(0o660);
  });

  it('answers typed calls with validated results', async () => {
    const show = await client.call('machineShow', {});
    expect(show.machine.machine_id).toBe('m1');
    const init = await client.call('machineInit', { region: 'eu' });
    expect(init.machine.region).toBe('eu');
    expect((await client.call('deployPreview', { manifest: 'ok' })).summary.create).toBe(1);
  });

  it('carries errors as {code,message,details} with an HTTP status from their kind', async () => {
    const e = await failure(client.call('deployPreview', { manifest: 'bad', filename: 'ployz.toml' }));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.details).toEqual({ file: 'ployz.toml' });
    expect((await failure(client.call('machineInit', { machine_id: 'exists' }))).code).toBe(
      'ALREADY_INITIALISED',
    );
    // Raw wire check: status and body.
    const { Agent } = await import('undici');
    const agent = new Agent({ connect: { socketPath } });
    try {
      const res = await agent.request({
        origin: 'http://ployzd',
        path: '/v1/deploy/preview',
        method: 'POST',
        body: '{"manifest":"bad"}',
      });
      expect(res.statusCode).toBe(400);
      expect(await res.body.json()).toMatchObject({
        error: { code: 'MANIFEST_INVALID', message: 'service web has no image' },
      });
      const bad = await agent.request({
        origin: 'http://ployzd',
        path: '/v1/deploy/preview',
        method: 'POST',
        body: '{',
      });
      expect(bad.statusCode).toBe(400);
      expect(await bad.body.json()).toMatchObject({ error: { code: 'API_BAD_REQUEST' } });
      const none = await agent.request({ origin: 'http://ployzd', path: '/v1/nope', method: 'GET' });
      expect(none.statusCode).toBe(404);
      await none.body.dump();
    } finally {
      await agent.close();
    }
  });

  it('cert routes: the list, one hostname by query, and an unknown one is CERT_UNKNOWN with what is known', async () => {
    expect(api.certList).toMatchObject({ method: 'GET', path: '/v1/certs' });
    expect(api.certShow).toMatchObject({ method: 'GET', path: '/v1/cert' });
    expect(await client.call('certList', {})).toEqual({
      directory_url: 'https://ca.test/dir',
      certificates: [certificate],
    });
    expect(await client.call('certShow', { hostname: 'shop.test' })).toEqual(certificate);
    const e = await failure(client.call('certShow', { hostname: 'other.test' }));
    expect(e.code).toBe('CERT_UNKNOWN');
    expect(e.details).toEqual({ hostname: 'other.test', known: ['shop.test'] });
    expect((await failure(client.call('certShow', { hostname: '' }))).code).toBe('API_BAD_REQUEST');
  });

  it('storage promote plan: the plan as computed, a refusal with its code, a malformed request refused', async () => {
    expect(api.storagePromotePlan).toMatchObject({ method: 'POST', path: '/v1/storage/promote/plan' });
    expect(await client.call('storagePromotePlan', { replicas: 3, machines: ['m1', 'm2', 'm3'] })).toEqual(
      promotePlan,
    );
    expect(
      (await failure(client.call('storagePromotePlan', { replicas: 2, machines: ['m1', 'm2'] }))).code,
    ).toBe('REPLICAS_INVALID');
    expect(
      (await failure(client.call('storagePromotePlan', { replicas: 3.5, machines: ['m1'] } as never))).code,
    ).toBe('API_BAD_REQUEST');
  });

  it('validates request bodies on both sides', async () => {
    expect((await failure(client.call('deployPreview', { manifest: '' }))).code).toBe('API_BAD_REQUEST');
  });

  it('a request that does not validate names the field at fault and why', async () => {
    const e = await failure(client.call('namespaceRemove', { namespace: '../etc' }));
    expect(e.code).toBe('API_BAD_REQUEST');
    expect(e.message).toBe(
      'the namespaceRemove request does not validate: namespace: must be a DNS label: lowercase letters, digits and -, starting and ending with a letter or digit',
    );
    expect(e.details).toMatchObject({
      route: 'namespaceRemove',
      issues: [expect.objectContaining({ path: ['namespace'] })],
    });
    // A namespace becomes part of container, dataset and path names, and of store keys: a branch's
    // destination, a volume lookup and a list filter are DNS labels too (no '..', no key wildcards).
    const branch = await failure(client.call('branchApply', { source: 'shop', destination: '../x' }));
    expect(branch.message).toMatch(
      /^the branchApply request does not validate: destination: must be a DNS label/,
    );
    for (const [route, input] of [
      ['volumeShow', { namespace: 'shop', name: '../data' }],
      ['volumeList', { namespace: '>' }],
      ['deployList', { namespace: 'shop.*' }],
    ] as const)
      expect((await failure(client.call(route, input as never))).code, route).toBe('API_BAD_REQUEST');
  });

  it('an unimplemented route is NOT_FOUND naming it; an invalid handler result is INTERNAL', async () => {
    const e = await failure(client.call('deployShow', { id: 'dep-1' }));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toMatch(/deployShow/);
    expect((await failure(client.call('status', {}))).code).toBe('INTERNAL');
    expect(server.missing()).toEqual([
      'machineList',
      'machineDrain',
      'machineRemove',
      'machineInvite',
      'machineJoin',
      'machineCredentialsRotate',
      'deployShow',
      'volumeList',
      'volumeShow',
      'deployRollback',
      'branchPreview',
      'branchApply',
      'branchPromotePreview',
      'branchPromote',
      'imagePush',
      'registryLogin',
      'registryList',
      'registryLogout',
      'ps',
      'logs',
      'namespaceList',
      'namespaceRemove',
      'storagePromoteApply',
    ]);
  });

  it('streams progress as NDJSON and ends with the result', async () => {
    const items = [];
    for await (const item of client.stream('deployApply', { manifest: 'ok' })) items.push(item);
    expect(items.map((i) => (i.kind === 'progress' ? i.progress.type : 'result'))).toEqual([
      'plan',
      'step',
      'commit',
      'result',
    ]);
    const last = items.at(-1);
    expect(last?.kind === 'result' && last.result.noop).toBe(false);
  });

  it('an error after streaming started arrives as the last line, typed', async () => {
    const progress: string[] = [];
    const e = await failure(
      (async () => {
        for await (const item of client.stream('deployApply', { manifest: 'held' })) {
          if (item.kind === 'progress') progress.push(item.progress.type);
        }
      })(),
    );
    expect(progress).toEqual(['plan', 'step']);
    expect(e.code).toBe('DEPLOY_LOCK_HELD');
    expect(e.details).toEqual({ holder: 'm2' });
  });

  it('an endless stream stops when the client aborts, and the handler sees it', async () => {
    const ac = new AbortController();
    let n = 0;
    for await (const item of client.stream('events', {}, { signal: ac.signal })) {
      if (item.kind === 'progress' && ++n === 3) ac.abort();
    }
    expect(n).toBe(3);
    await expect.poll(() => seenEventsAbort.length).toBe(1);
  });

  it('every route of the table has a unique method+path under /v1', () => {
    const keys = Object.values(api).map((r) => `${r.method} ${r.path}`);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('a live socket is not taken over by a second server', async () => {
    const e = await failure(new LocalApiServer().listen(socketPath));
    expect(e.code).toBe('CONFIG_INVALID');
  });
});

describe('when ployzd is not there', () => {
  it('a missing socket is DAEMON_UNREACHABLE with a hint to start ployzd', async () => {
    const c = new LocalApiClient({ socketPath: join(dir, 'missing.sock') });
    try {
      const e = await failure(c.call('machineShow', {}));
      expect(e.code).toBe('DAEMON_UNREACHABLE');
      expect(e.message).toMatch(/start it with/);
    } finally {
      await c.close();
    }
  });

  it('a stale socket file (nobody listening) is DAEMON_UNREACHABLE, and a new server replaces it', async () => {
    const stale = join(dir, 'stale.sock');
    // A daemon killed with -9 leaves its socket file behind with nobody listening.
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(stale)})`,
    ]);
    await expect.poll(() => socketAnswers(stale), { timeout: 5000 }).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect((await stat(stale)).isSocket()).toBe(true);
    const c = new LocalApiClient({ socketPath: stale });
    try {
      expect((await failure(c.call('machineShow', {}))).code).toBe('DAEMON_UNREACHABLE');
      const fresh = new LocalApiServer().implement('machineShow', () => ({
        machine: identity,
        record: null,
      }));
      await fresh.listen(stale);
      try {
        const c2 = new LocalApiClient({ socketPath: stale });
        expect((await c2.call('machineShow', {})).machine.machine_id).toBe('m1');
        await c2.close();
      } finally {
        await fresh.close();
      }
    } finally {
      await c.close();
    }
  });
});
