/**
 * ployzctl against a scripted local API on a real unix socket (the e2e tests run it against a real
 * ployzd): wire shape, human and --json output, error codes and exit status.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MANIFEST_MAX_BYTES, type PloyzError, parseManifest } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = new URL('../bin/run.js', import.meta.url).pathname;
let dir = '';
let socket = '';
let server: Server;
const seen: { method: string; url: string; body: string }[] = [];

const status = {
  daemon: { pid: 42, version: '0.1.0', started_at: new Date().toISOString(), socket: 's', state_dir: 'd' },
  initialised: true,
  machine: {
    installation: 'local',
    authority: 'auth-default',
    machine_id: 'm1',
    public_key: 'K=',
    overlay_ip: 'fd70::1',
    subnet: '10.210.7.0/24',
    region: 'eu',
    created_at: new Date().toISOString(),
    record_stored: true,
  },
  reconcile: { at: new Date().toISOString(), adopted: 3, created: 0, recreated: 1, problems: 0, error: null },
  components: [
    {
      component: 'networking',
      container_name: 'ployz-networking',
      container_id: 'a'.repeat(64),
      state: 'adopted',
      reason: null,
      detail: 'identity matches',
      since: new Date().toISOString(),
      running: true,
      health: 'healthy',
    },
    {
      component: 'gateway',
      container_name: 'ployz-gateway',
      container_id: 'b'.repeat(64),
      state: 'recreated',
      reason: 'config_drift',
      detail: 'config hash 1 != expected 2',
      since: new Date().toISOString(),
      running: true,
      health: 'healthy',
      image_id: `sha256:${'c'.repeat(64)}`,
      version: '0.2.0',
      expected_image_id: `sha256:${'d'.repeat(64)}`,
      skew: `runs image ${'c'.repeat(12)}, this ployzd expects ${'d'.repeat(12)}`,
    },
  ],
  nats: {
    url: 'nats://10.210.7.2:4222',
    state: 'connected',
    since: new Date().toISOString(),
    last_error: null,
    rtt_ms: 1,
  },
  agent: {
    subject: 'ployz.v1.local.auth-default.rpc.node.m1.<command>',
    commands: ['capacity', 'ping', 'status'],
    listening: true,
  },
  routes: { conflicts: [{ id: 'hello.localhost', winner: 'demo/hello', loser: 'thief/hello' }], error: null },
  join: { address: '192.0.2.1:51821' },
};

const AT = '2026-11-22T00:00:00.000Z';
// Lines of the `events` route as ployzd sends them (@ployz/protocol's EventView: the stored
// routing event and its identifying fields).
const events = [
  {
    seq: 1,
    type: 'machine_upserted',
    at: AT,
    deploy_id: null,
    namespace: null,
    service: null,
    instance: null,
    machine: 'm1',
    event: {
      type: 'machine_upserted',
      machine: {
        id: 'm1',
        public_key: `${'A'.repeat(42)}E=`,
        overlay_ip: 'fd70::1',
        subnet: '10.210.7.0/24',
        endpoints: [],
        region: 'eu',
        region_role: 'compute',
        lifecycle: 'active',
        created_at: AT,
        updated_at: AT,
      },
      deploy_id: null,
      at: AT,
    },
  },
  {
    seq: 2,
    type: 'instance_upserted',
    at: AT,
    deploy_id: 'dep-1',
    namespace: 'shop',
    service: 'web',
    instance: 'web-0-a',
    machine: 'm1',
    event: {
      type: 'instance_upserted',
      instance: {
        id: 'web-0-a',
        namespace: 'shop',
        service: 'web',
        slot: 0,
        machine: 'm1',
        revision: 'rev-0123456789abcdef',
        deploy: 'dep-1',
        container_id: null,
        ip: null,
        ip6: null,
        ports: {},
        state: 'running',
        ready: true,
        draining: false,
        error: null,
        created_at: AT,
        updated_at: AT,
      },
      deploy_id: 'dep-1',
      at: AT,
    },
  },
];

function ctl(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return ctlWithStdin(null, ...args);
}

function ctlWithStdin(
  stdin: string | null,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--conditions=ployz-source', BIN, ...args],
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(stdin ?? undefined);
  });
}

const INVITE = {
  token: 'ployz1.eyJpIjoibG9jYWwifQ.c2ln',
  installation: 'local',
  issuer: 'm1',
  join: '192.0.2.1:51821',
  endpoints: ['192.0.2.1:51820'],
  region: 'eu',
  expires_at: '2026-12-02T11:00:00.000Z',
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployzctl-test-'));
  socket = join(dir, 'api.sock');
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => {
      body += d.toString();
    });
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body });
      res.setHeader('content-type', 'application/json');
      if (req.url === '/v1/status') return res.end(JSON.stringify({ result: status }));
      if (req.url === '/v1/storage/promote/plan') {
        const input = JSON.parse(body) as { replicas: number; machines: string[] };
        if (input.replicas === 2) {
          return res.end(
            JSON.stringify({
              error: { code: 'REPLICAS_INVALID', message: 'replicas must be 1, 3 or 5, never 2' },
            }),
          );
        }
        const down = input.machines.includes('m9');
        return res.end(
          JSON.stringify({
            result: {
              from: 1,
              to: 3,
              current_storage: 'm1',
              members: input.machines.map((m) => ({
                machine: m,
                overlay_ip: 'fd70::1',
                region: 'eu',
                region_role: 'home_data',
                reachable: m !== 'm9',
                healthy: m !== 'm9',
                rtt_ms: m === 'm9' ? null : 0.5,
                holds_store_now: m === 'm1',
              })),
              regions: ['eu'],
              rtt_bound_ms: 50,
              assets: [],
              messages: 0,
              bytes: 0,
              checks: down
                ? [{ check: 'reachable', machine: 'm9', ok: false, blocking: true, detail: 'no answer' }]
                : [],
              refusal: down
                ? { code: 'STORE_PROMOTE_UNHEALTHY', message: 'not promoting now: m9 reachable: no answer' }
                : null,
              promotion: null,
            },
          }),
        );
      }
      if (req.url === '/v1/machine/init') {
        res.statusCode = 409;
        return res.end(
          JSON.stringify({
            error: {
              code: 'ALREADY_INITIALISED',
              message: 'this machine is already m1; nothing was changed',
            },
          }),
        );
      }
      if (req.url === '/v1/machine') {
        const record = {
          id: 'm1',
          public_key: `${'A'.repeat(43)}=`,
          overlay_ip: 'fd70::1',
          subnet: '10.210.7.0/24',
          endpoints: ['192.0.2.1:51820', '[2001:db8::1]:51820'],
          region: 'eu',
          region_role: 'home_data',
          lifecycle: 'active',
          created_at: new Date().toISOString(),
          updated_at: new Date().toISOString(),
        };
        return res.end(JSON.stringify({ result: { machine: status.machine, record } }));
      }
      if (req.url === '/v1/machine/invite') return res.end(JSON.stringify({ result: INVITE }));
      if (req.url === '/v1/registry/login') {
        const b = JSON.parse(body) as { host: string; username: string; verify: boolean };
        if (b.host === 'refused.example')
          return res.writeHead(400).end(
            JSON.stringify({
              error: {
                code: 'REGISTRY_AUTH_FAILED',
                message: 'refused.example refused the username and password for ci',
              },
            }),
          );
        return res.end(
          JSON.stringify({
            result: {
              host: b.host,
              username: b.username,
              updated_at: '2026-12-03T07:00:00.000Z',
              updated_by: 'm1',
              verified: b.verify,
            },
          }),
        );
      }
      if (req.url === '/v1/registries')
        return res.end(
          JSON.stringify({
            result: {
              registries: [
                {
                  host: '127.0.0.1:5000',
                  username: 'ci',
                  updated_at: '2026-12-03T07:00:00.000Z',
                  updated_by: 'm1',
                },
              ],
            },
          }),
        );
      if (req.url === '/v1/registry/logout') {
        const b = JSON.parse(body) as { host: string };
        return res.end(JSON.stringify({ result: { host: b.host, removed: b.host === '127.0.0.1:5000' } }));
      }
      if (req.url === '/v1/machine/join') {
        res.statusCode = 409;
        return res.end(
          JSON.stringify({
            error: {
              code: 'INVITE_USED',
              message: 'this invite already joined m2; nothing was changed',
              details: { used_by: 'm2' },
            },
          }),
        );
      }
      if (req.url === '/v1/deploy/preview') {
        // The daemon's own parser, so the issues (and their positions) are the real ones.
        const input = JSON.parse(body) as { manifest: string; filename: string };
        try {
          parseManifest(input.manifest, { filename: input.filename });
        } catch (e) {
          res.statusCode = 400;
          return res.end(JSON.stringify({ error: (e as PloyzError).toJSON() }));
        }
      }
      if (req.url?.startsWith('/v1/events')) {
        res.setHeader('content-type', 'application/x-ndjson');
        const q = new URL(req.url, 'http://x').searchParams;
        if (q.get('from_seq') === '99') {
          return res.end(
            `${JSON.stringify({ error: { code: 'STORE_UNAVAILABLE', message: 'NATS is not connected' } })}\n`,
          );
        }
        for (const e of events) res.write(`${JSON.stringify({ progress: e })}\n`);
        return res.end(`${JSON.stringify({ result: { reason: 'caught_up', last_seq: 2 } })}\n`);
      }
      if (req.url?.startsWith('/v1/deploys')) {
        const q = new URL(req.url, 'http://x').searchParams;
        const limit = Number(q.get('limit'));
        const rows = Array.from({ length: limit }, (_, i) => ({
          deploy_id: `dep-00000000${i % 10}aaaaaaa${i % 10}`,
          namespace: 'demo',
          state: 'committed',
          manifest_hash: 'h',
          phases: [],
          commits: [],
          rollback_of: null,
          actor: 't',
          step: 9,
          error: null,
          started_at: '2026-01-01T00:00:00.000Z',
          updated_at: '2026-01-01T00:00:00.000Z',
        }));
        return res.end(JSON.stringify({ result: rows }));
      }
      if (req.url === '/v1/machines')
        return res.end(
          JSON.stringify({
            result: [
              {
                id: 'm1',
                public_key: `${'A'.repeat(43)}=`,
                overlay_ip: 'fd70::1',
                subnet: '10.210.7.0/24',
                endpoints: [],
                region: 'eu',
                region_role: 'home_data',
                lifecycle: 'active',
                created_at: new Date().toISOString(),
                updated_at: new Date().toISOString(),
                live: { reachable: true, rtt_ms: 1.5, handshake_at: null, detail: null },
              },
              {
                id: 'm2',
                public_key: `${'A'.repeat(42)}E=`,
                overlay_ip: 'fd70::2',
                subnet: '10.210.8.0/24',
                endpoints: ['192.0.2.2:51820'],
                region: 'eu',
                region_role: 'home_data',
                lifecycle: 'active',
                created_at: new Date().toISOString(),
                updated_at: new Date().toISOString(),
                live: {
                  reachable: false,
                  rtt_ms: null,
                  handshake_at: new Date(Date.now() - 30_000).toISOString(),
                  detail: 'no responders',
                },
              },
            ],
          }),
        );
      res.statusCode = 404;
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
    });
  });
  await new Promise<void>((r) => server.listen(socket, r));
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('ployzctl', () => {
  it('registry login reads the password from stdin only, sends it once and never prints it; ls and logout', async () => {
    const secret = 'hunter2-registry';
    const login = await ctlWithStdin(
      `${secret}\n`,
      'registry',
      'login',
      '127.0.0.1:5000',
      '-u',
      'ci',
      '--password-stdin',
      '--socket',
      socket,
    );
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(
      /Stored credentials for 127\.0\.0\.1:5000 as ci .*the registry accepted them/,
    );
    expect(login.stdout + login.stderr).not.toContain(secret);
    const sent = seen.filter((r) => r.url === '/v1/registry/login').at(-1);
    expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({
      host: '127.0.0.1:5000',
      username: 'ci',
      password: secret,
      verify: true,
    });

    const noStdin = await ctl('registry', 'login', '127.0.0.1:5000', '-u', 'ci', '--socket', socket);
    expect(noStdin.code).toBe(2);
    expect(noStdin.stderr).toMatch(/INVALID_ARGUMENT: pass the password on stdin: --password-stdin/);

    const refused = await ctlWithStdin(
      'x',
      'registry',
      'login',
      'refused.example',
      '-u',
      'ci',
      '--password-stdin',
      '--socket',
      socket,
    );
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/REGISTRY_AUTH_FAILED/);

    const ls = await ctl('registry', 'ls', '--socket', socket);
    expect(ls.stdout).toMatch(
      /^HOST +USERNAME +UPDATED +BY\n127\.0\.0\.1:5000 +ci +2026-12-03T07:00:00\.000Z +m1/,
    );
    const json = await ctl('registry', 'ls', '--json', '--socket', socket);
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({ host: '127.0.0.1:5000', username: 'ci' }),
    ]);

    expect((await ctl('registry', 'logout', '127.0.0.1:5000', '--socket', socket)).stdout).toMatch(
      /Removed the credentials for 127\.0\.0\.1:5000/,
    );
    expect((await ctl('registry', 'logout', 'other.example', '--socket', socket)).stdout).toMatch(
      /No credentials for other\.example/,
    );
  });

  it('status prints components with state, reason and container, and NATS + agent lines', async () => {
    const r = await ctl('status', '--socket', socket);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/machine: m1\s+installation local\s+region eu/);
    expect(r.stdout).toMatch(/subnet 10\.210\.7\.0\/24/);
    expect(r.stdout).toMatch(
      /gateway\s+recreated\s+config_drift\s+\d+s ago\s+bbbbbbbbbbbb\s+0\.2\.0\s+config hash 1 != expected 2/,
    );
    expect(r.stdout).toContain(
      `version skew: gateway runs image ${'c'.repeat(12)}, this ployzd expects ${'d'.repeat(12)}`,
    );
    expect(r.stdout).toMatch(/networking\s+adopted\s+-/);
    expect(r.stdout).toMatch(/nats: connected nats:\/\/10\.210\.7\.2:4222/);
    expect(r.stdout).toMatch(/agent: listening/);
    expect(r.stdout).toMatch(/^join: listening on 192\.0\.2\.1:51821 /m);
    expect(r.stdout).toContain('  hello.localhost: served by demo/hello, not by thief/hello\n');
  });

  it('status --json returns the daemon status unchanged', async () => {
    const r = await ctl('status', '--socket', socket, '--json');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(status);
  });

  it('machine storage promote: sends the machines, prints the plan; a failed guardrail exits 1, R=2 exits 2', async () => {
    const promote = (replicas: string, ...machines: string[]) =>
      ctl('machine', 'storage', 'promote', '--socket', socket, '--replicas', replicas, ...machines);
    const ok = await promote('3', 'm1', 'm2', 'm3');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('store: 1 → 3 replicas (now on m1)');
    expect(ok.stdout).toContain('nothing was changed');
    const sent = seen.filter((s) => s.url === '/v1/storage/promote/plan').at(-1);
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({ replicas: 3, machines: ['m1', 'm2', 'm3'] });
    const down = await promote('3', 'm1', 'm2', 'm9');
    expect(down.code).toBe(1);
    expect(down.stdout).toContain('FAIL reachable m9: no answer');
    expect(down.stderr).toContain('STORE_PROMOTE_UNHEALTHY: not promoting now: m9 reachable: no answer');
    const two = await promote('2', 'm1', 'm2');
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('REPLICAS_INVALID');
  });

  it('machine init sends the flags and reports ALREADY_INITIALISED with exit 2', async () => {
    const r = await ctl('machine', 'init', '--socket', socket, '--id', 'web-1', '--region', 'eu');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('ALREADY_INITIALISED: this machine is already m1; nothing was changed');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const sent = seen.find((s) => s.url === '/v1/machine/init');
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({
      machine_id: 'web-1',
      installation: 'local',
      authority: 'auth-default',
      region: 'eu',
    });
    const json = await ctl('machine', 'init', '--socket', socket, '--json');
    expect(JSON.parse(json.stdout)).toEqual({
      error: { code: 'ALREADY_INITIALISED', message: 'this machine is already m1; nothing was changed' },
    });
  });

  it('machine init --endpoint sends every value (repeated or comma list) for ployzd to validate', async () => {
    await ctl(
      'machine',
      'init',
      '--socket',
      socket,
      '--endpoint',
      '192.0.2.1:1,192.0.2.2:2',
      '--endpoint',
      '192.0.2.3:3',
    );
    const sent = seen.filter((s) => s.url === '/v1/machine/init').at(-1);
    expect(JSON.parse(sent?.body ?? '{}').endpoints).toEqual(['192.0.2.1:1,192.0.2.2:2', '192.0.2.3:3']);
  });

  it('machine invite sends ttl, region and endpoints and prints only the token on stdout', async () => {
    const r = await ctl(
      'machine',
      'invite',
      '--socket',
      socket,
      '--ttl',
      '30m',
      '--region',
      'eu',
      '--endpoint',
      '192.0.2.1:51820',
    );
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${INVITE.token}\n`);
    expect(r.stderr).toContain('single use, expires 2026-12-02T11:00:00.000Z');
    const sent = seen.filter((s) => s.url === '/v1/machine/invite').at(-1);
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({
      ttl: '30m',
      region: 'eu',
      endpoints: ['192.0.2.1:51820'],
    });
    const json = await ctl('machine', 'invite', '--socket', socket, '--json');
    expect(JSON.parse(json.stdout)).toEqual(INVITE);
    expect(JSON.parse(seen.filter((s) => s.url === '/v1/machine/invite').at(-1)?.body ?? '{}')).toEqual({
      ttl: '1h',
    });
  });

  it('machine join reads the token from stdin with --token-file - and reports INVITE_USED with exit 2', async () => {
    const r = await ctlWithStdin(
      `${INVITE.token}\n`,
      'machine',
      'join',
      '--socket',
      socket,
      '--token-file',
      '-',
      '--id',
      'm3',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('INVITE_USED: this invite already joined m2; nothing was changed');
    const sent = seen.filter((s) => s.url === '/v1/machine/join').at(-1);
    expect(JSON.parse(sent?.body ?? '{}')).toEqual({ token: INVITE.token, machine_id: 'm3' });
    const both = await ctl(
      'machine',
      'join',
      INVITE.token,
      '--token-file',
      join(dir, 'token'),
      '--socket',
      socket,
    );
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('INVALID_ARGUMENT');
  });

  it('machine show prints the record’s endpoints', async () => {
    const r = await ctl('machine', 'show', '--socket', socket);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^endpoints\s+192\.0\.2\.1:51820, \[2001:db8::1\]:51820$/m);
  });

  it('machine ls prints one row per machine, with the live handshake and probe columns', async () => {
    const r = await ctl('machine', 'ls', '--socket', socket);
    const [head, m1, m2] = r.stdout.split('\n');
    expect(head).toMatch(
      /^ID\s+REGION\s+ROLE\s+LIFECYCLE\s+SUBNET\s+OVERLAY\s+ENDPOINT\s+HANDSHAKE\s+PROBE$/,
    );
    expect(m1).toMatch(/^m1\s+eu\s+home_data\s+active\s+10\.210\.7\.0\/24\s+fd70::1\s+-\s+-\s+ok 1\.5ms$/);
    expect(m2).toMatch(/^m2\s+.*192\.0\.2\.2:51820\s+3\ds ago\s+unreachable \(no responders\)$/);
  });

  it('deploy ls sends limit/before, says newest first in --help, and hints the next page', async () => {
    const r = await ctl(
      'deploy',
      'ls',
      '--socket',
      socket,
      '--limit',
      '2',
      '--before',
      'dep-x',
      '-n',
      'demo',
    );
    expect(r.code).toBe(0);
    const sent = seen.filter((s) => s.url.startsWith('/v1/deploys')).at(-1);
    expect(Object.fromEntries(new URL(sent?.url ?? '/', 'http://x').searchParams)).toEqual({
      before: 'dep-x',
      limit: '2',
      namespace: 'demo',
    });
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[3]).toBe(
      'next page: ployzctl deploy ls --namespace demo --limit 2 --before dep-000000001aaaaaaa1',
    );
    const json = await ctl('deploy', 'ls', '--socket', socket, '--json');
    expect(JSON.parse(json.stdout)).toHaveLength(20);
    const help = await ctl('deploy', 'ls', '--help');
    expect(help.stdout).toContain('newest first');
  });

  it('events sends from_seq/follow/namespace and prints one line per event', async () => {
    const r = await ctl('events', '--socket', socket, '--from-seq', '1', '-n', 'shop');
    expect(r.code).toBe(0);
    const sent = seen.filter((s) => s.url.startsWith('/v1/events')).at(-1);
    expect(new URL(sent?.url ?? '/', 'http://x').searchParams.toString()).toBe(
      'follow=false&from_seq=1&namespace=shop',
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\s*1\s+2026-11-22T00:00:00\.000Z\s+machine_upserted\s+machine m1\s+-$/);
    expect(lines[1]).toMatch(/^\s*2\s+\S+\s+instance_upserted\s+shop\/web\/web-0-a @m1\s+dep-1$/);
  });

  it('events --json prints NDJSON; a stream error is CODE: message (exit 1) or a JSON error line', async () => {
    const r = await ctl('events', '--socket', socket, '--follow', '--json');
    expect(r.code).toBe(0);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(events);
    expect(seen.at(-1)?.url).toBe('/v1/events?follow=true');

    const bad = await ctl('events', '--socket', socket, '--from-seq', '99');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('STORE_UNAVAILABLE: NATS is not connected');
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const badJson = await ctl('events', '--socket', socket, '--from-seq', '99', '--json');
    expect(badJson.code).toBe(1);
    expect(JSON.parse(badJson.stdout)).toMatchObject({ type: 'error', error: { code: 'STORE_UNAVAILABLE' } });
  });

  it('deploy preview prints every manifest problem as file:line:col code path: message', async () => {
    const file = join(dir, 'bad.toml');
    await writeFile(
      file,
      'namespace = "Demo"\n\n[[services]]\nname = "web"\nimage = ""\n\n[[services]]\nname = "Web"\nimage = "x"\n',
    );
    const r = await ctl('deploy', 'preview', '-f', file, '--socket', socket);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split('\n')).toEqual([
      'MANIFEST_INVALID: the manifest does not validate (3 problems)',
      expect.stringMatching(/^ {2}\S+bad\.toml:1:1 NAME_NOT_DNS_LABEL namespace: /),
      expect.stringMatching(/^ {2}\S+bad\.toml:5:1 IMAGE_INVALID services\[0\]\.image: /),
      expect.stringMatching(/^ {2}\S+bad\.toml:8:1 NAME_NOT_DNS_LABEL services\[1\]\.name: /),
    ]);
  });

  it('deploy preview of a manifest over the size limit is MANIFEST_TOO_LARGE, nothing sent', async () => {
    const file = join(dir, 'big.toml');
    await writeFile(file, `namespace = "demo"\n# ${'x'.repeat(MANIFEST_MAX_BYTES)}\n`);
    const before = seen.length;
    const r = await ctl('deploy', 'preview', '-f', file, '--socket', socket);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      new RegExp(
        `^MANIFEST_TOO_LARGE: \\S+big\\.toml: the manifest is ${MANIFEST_MAX_BYTES + 22} bytes; the limit is ${MANIFEST_MAX_BYTES} bytes`,
      ),
    );
    const apply = await ctl('deploy', '-f', file, '--socket', socket);
    expect(apply.code).toBe(2);
    expect(apply.stderr).toMatch(/^MANIFEST_TOO_LARGE: /);
    const json = await ctl('deploy', '-f', file, '--socket', socket, '--json');
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({
      type: 'error',
      error: { code: 'MANIFEST_TOO_LARGE', details: { limit: MANIFEST_MAX_BYTES } },
    });
    expect(seen.length).toBe(before);
  });

  it('says DAEMON_UNREACHABLE with a hint when nothing listens', async () => {
    const r = await ctl('status', '--socket', join(dir, 'nothing.sock'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^DAEMON_UNREACHABLE: ployzd does not answer on .*nothing\.sock.*start it with/);
  });
});
