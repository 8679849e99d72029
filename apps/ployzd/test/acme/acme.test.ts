/**
 * Automatic HTTPS against a real Pebble on loopback (@ployz/testkit startPebble): two renewers (two machines of
 * one installation) over a real nats-server, a real ployz-gateway process fed by this machine's
 * AcmeGatewayFeed. Pebble validates HTTP-01 by fetching the token from the gateway's HTTP port,
 * so the challenge is really served. Certificates live 15 s: renewal at two thirds happens once
 * (one renewer under the lease), the gateway swaps it while an open connection keeps its own,
 * and with Pebble down the old certificate keeps serving while the renewal state says failing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InstallationKey } from '@ployz/identity';
import { openStore, type Store } from '@ployz/store';
import {
  fixtures,
  freePort,
  type Handshake,
  type NatsServer,
  type Pebble,
  requestOn,
  startNats,
  startPebble,
  tlsHandshake,
  waitForPort,
} from '@ployz/testkit';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AcmeBuckets, openAcmeBuckets } from '../../src/acme/buckets.ts';
import { AcmeGatewayFeed } from '../../src/acme/gateway-feed.ts';
import { AcmeRenewer } from '../../src/acme/renewer.ts';
import { tlsAutoHostnames } from '../../src/acme/schedule.ts';
import { certificateView } from '../../src/acme/views.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
// The built gateway (its source uses enums, which node's type stripping does not run).
const GATEWAY = join(ROOT, 'apps/ployz-gateway/dist/main.js');
const HOST = 'shop.test';
const REV = 'rev-acacacacacacacac';

let nats: NatsServer;
let store: Store;
let buckets: AcmeBuckets;
let pebble: Pebble;
let gateway: ChildProcess;
let backend: http.Server;
let dir: string;
let httpPort: number;
let httpsPort: number;
const renewers: AcmeRenewer[] = [];
let feed: AcmeGatewayFeed;
const issued: string[] = [];
const gatewayLog: string[] = [];

/** A logger whose 'certificate issued' lines are counted (the observable number of orders won). */
function logger(machine: string) {
  return pino(
    { level: 'info', base: { machine } },
    {
      write: (line: string) => {
        const entry = JSON.parse(line) as { msg: string; serial?: string };
        if (entry.msg === 'certificate issued') issued.push(`${machine} ${entry.serial}`);
      },
    },
  );
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 40_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      const [cert, renewal] = await Promise.all([buckets.certificates.get(HOST), buckets.renewals.get(HOST)]);
      const state = JSON.stringify({ issued, renewal: renewal?.value, cert: cert?.value.not_after });
      throw new Error(`${what}: timed out (${String(last)}) ${state}\n${gatewayLog.slice(-20).join('')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function handshake(ca: string, servername = HOST): Promise<Handshake> {
  return tlsHandshake({ host: '127.0.0.1', port: httpsPort, servername, ca });
}

function plainGet(path: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: httpPort, path, headers: { host: HOST } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    });
    req.on('error', reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ployz-acme-'));
  nats = await startNats();
  const scope = { installation: 'acmetest', authority: 'acmetest' };
  store = await openStore({ servers: nats.url, ...scope });
  buckets = await openAcmeBuckets(store);
  const key = InstallationKey.generate();

  backend = http.createServer((_req, res) => res.end('hello from shop'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  const backendPort = (backend.address() as { port: number }).port;

  // The committed routing records a deploy of `tls = "auto"` leaves behind.
  const spec = fixtures.serviceSpec({
    namespace: 'shop',
    name: 'web',
    routes: [{ kind: 'http', hostnames: [HOST], path: '/', port: 'http', tls: 'auto', https_redirect: true }],
  });
  await store.machines.save(fixtures.machine('m1', { endpoints: [] }), null);
  await store.revisions.save(fixtures.revision(REV, { namespace: 'shop', service: 'web', spec }), null);
  const inst = fixtures.instance('web-0-a', {
    revision: REV,
    ip: '127.0.0.1',
    ports: { http: backendPort },
    container_id: null,
  });
  await store.instances.save(inst, null);
  await store.releases.save(
    fixtures.release({ revision: REV, slots: [{ slot: 0, machine: 'm1', instance: inst.id }] }),
    null,
  );

  [httpPort, httpsPort] = await Promise.all([freePort(), freePort()]);
  pebble = await startPebble({ httpPort, validitySeconds: 15 });

  feed = new AcmeGatewayFeed({ dir: join(dir, 'acme'), buckets, key, logger: logger('m1'), intervalMs: 100 });
  await feed.start();
  const adminPort = await freePort();
  gateway = spawn(process.execPath, [GATEWAY], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      PLOYZ_NATS_URL: nats.url,
      PLOYZ_INSTALLATION: scope.installation,
      PLOYZ_AUTHORITY: scope.authority,
      PLOYZ_MACHINE_ID: 'm1',
      PLOYZ_GATEWAY_LISTEN_HOST: '127.0.0.1',
      PLOYZ_GATEWAY_HTTP_PORT: String(httpPort),
      PLOYZ_GATEWAY_HTTPS_PORT: String(httpsPort),
      PLOYZ_GATEWAY_ADMIN_PORT: String(adminPort),
      PLOYZ_GATEWAY_ACME_DIR: join(dir, 'acme'),
      PLOYZ_GATEWAY_WORKERS: '1',
      PLOYZ_GATEWAY_MACHINE_PROBE_INTERVAL_MS: '0',
      // The connection held open across the renewal stays idle that long.
      PLOYZ_GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '60000',
    },
  });
  gateway.stdout?.on('data', (d: Buffer) => gatewayLog.push(d.toString()));
  gateway.stderr?.on('data', (d: Buffer) => gatewayLog.push(d.toString()));
  await waitForPort(httpsPort).catch((error: Error) => {
    throw new Error(`${error.message}; gateway said:\n${gatewayLog.join('')}`);
  });

  // Two machines' renewers over the same installation; the hostnames come from the store.
  for (const machine of ['m1', 'm2']) {
    const renewer = new AcmeRenewer({
      store,
      buckets,
      key,
      machineId: machine,
      directoryUrl: pebble.directoryUrl,
      directoryCaFile: pebble.listenerCaFile,
      hostnames: async () => tlsAutoHostnames(await store.routing.snapshot()),
      logger: logger(machine),
      intervalMs: 500,
      backoff: { minMs: 1_000, maxMs: 2_000 },
      propagationMs: 400,
      requestRetries: { attempts: 1, delaySeconds: 1 },
    });
    renewers.push(renewer);
    renewer.start();
  }
}, 60_000);

afterAll(async () => {
  await Promise.all(renewers.map((r) => r.stop()));
  await feed?.stop();
  if (gateway !== undefined && gateway.exitCode === null) {
    const exited = new Promise((r) => gateway.once('exit', r));
    gateway.kill('SIGKILL');
    await exited;
  }
  await pebble?.[Symbol.asyncDispose]();
  await store?.close();
  await nats?.stop();
  backend?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('automatic HTTPS (ACME HTTP-01 against Pebble)', () => {
  it('serves a Pebble-issued certificate by SNI, redirects HTTP, renews once and swaps without dropping a connection, keeps serving while renewal fails', async () => {
    const root = await pebble.root();
    expect(root).toContain('BEGIN CERTIFICATE');

    // 1. Issued through the challenge the gateway answered; the chain verifies against Pebble's root.
    const first = await until('first certificate served', async () => {
      const h = await handshake(root);
      if (!h.authorized) {
        h.socket.destroy();
        return undefined;
      }
      return h;
    });
    expect(first.authorizationError).toBeNull();
    expect(await requestOn(first.socket, '/', HOST)).toEqual({ status: 200, body: 'hello from shop' });
    // A name without a certificate gets no handshake (no default certificate).
    await expect(handshake(root, 'other.test')).rejects.toThrow();

    // 2. https_redirect: plain HTTP is answered 308 to the same host and path.
    expect(await plainGet('/cart?id=1')).toEqual({ status: 308, location: `https://${HOST}/cart?id=1` });

    // 3. Renewal at two thirds of 15 s: a new serial on new handshakes, ordered by one renewer.
    const second = await until('renewed certificate served', async () => {
      const h = await handshake(root);
      h.socket.destroy();
      return h.serial !== first.serial && h.authorized ? h : undefined;
    });
    expect(issued).toHaveLength(2);
    // The connection opened before the swap was not dropped and keeps its certificate.
    expect(await requestOn(first.socket, '/again', HOST)).toEqual({ status: 200, body: 'hello from shop' });
    expect(first.socket.getPeerCertificate().serialNumber).toBe(first.serial);
    first.socket.destroy();

    // 4. Pebble down: the next renewal fails and says so; the renewed certificate keeps serving.
    await pebble.stop();
    const failing = await until('renewal reported failing', async () => {
      const [cert, renewal] = await Promise.all([buckets.certificates.get(HOST), buckets.renewals.get(HOST)]);
      const view = certificateView(HOST, cert?.value ?? null, renewal?.value ?? null, true);
      return view.state === 'failing' ? view : undefined;
    });
    expect(failing.last_error?.code).toBe('ACME_ORDER_FAILED');
    expect(failing.next_attempt_at).not.toBeNull();
    expect(failing.serial).toBe(second.serial);
    const after = await handshake(root);
    after.socket.destroy();
    expect(after.serial).toBe(second.serial);
    expect(issued).toHaveLength(2);
  }, 110_000);
});
