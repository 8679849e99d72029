/**
 * Automatic HTTPS end to end: a real ployzd (its data plane on the real dockerd: ployz-nats,
 * ployz-gateway from the image) orders from a real Pebble on loopback (@ployz/testkit
 * startPebble, never a public CA). Pebble validates HTTP-01 by fetching the token from the
 * gateway's published HTTP port, so the challenge ployzd wrote into KV is really answered by the
 * container from the bind-mounted feed. Certificates live 30 s: renewal at two thirds happens
 * once, new handshakes get the new certificate while a connection opened before keeps working;
 * with Pebble down the renewed certificate keeps serving and `cert ls` / `status` say failing.
 */
import type { CertificateList, CertificateView } from '@ployz/protocol';
import { type Pebble, requestOn, startPebble, tlsHandshake } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonHarness, docker } from './daemon-harness.ts';
import { DeployHarness, gatewayGet } from './deploy-harness.ts';

let h: DaemonHarness;
let d: DeployHarness;
let pebble: Pebble;
let host: string;

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
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
      throw new Error(
        `${what}: timed out (${String(last)})\n${h.logs.slice(-30).join('')}\npebble:\n${pebble.log().slice(-3000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const handshake = (ca: string, servername = host) =>
  tlsHandshake({ host: '127.0.0.1', port: h.gatewayHttpsPort, servername, ca });

/** The serials this ployzd logged as issued (one line per order it won). */
function issued(): string[] {
  return h.logs
    .join('')
    .split('\n')
    .filter((l) => l.includes('"msg":"certificate issued"'))
    .map((l) => (JSON.parse(l) as { serial: string }).serial);
}

async function cert(): Promise<CertificateView | undefined> {
  const r = await h.ctl('cert', 'ls');
  const list = r.json as CertificateList | null;
  return list?.certificates.find((c) => c.hostname === host);
}

beforeAll(async () => {
  h = await DaemonHarness.create();
  host = `shop-${h.id}.test`;
  pebble = await startPebble({ httpPort: h.gatewayPort, validitySeconds: 30 });
  h.extraArgs = [
    ...['--acme-directory', pebble.directoryUrl, '--acme-ca-file', pebble.listenerCaFile],
    ...['--acme-interval-ms', '500', '--acme-request-retries', '1'],
  ];
  await h.startInitialised();
  d = new DeployHarness(h);
  await d.engineReady();
}, 180_000);

afterAll(async () => {
  await h?.[Symbol.asyncDispose]();
  await pebble?.[Symbol.asyncDispose]();
});

describe('automatic HTTPS through ployzd, ployz-gateway and Pebble', () => {
  it('mounts the feed into the gateway and publishes its HTTPS port', async () => {
    const mounts = JSON.parse(
      await docker('inspect', '--format', '{{json .Mounts}}', `${h.prefix}gateway`),
    ) as { Source: string; Destination: string; RW: boolean }[];
    expect(mounts).toContainEqual(
      expect.objectContaining({ Source: `${h.stateDir}/acme`, Destination: '/run/ployz/acme', RW: false }),
    );
    const ports = await docker('port', `${h.prefix}networking`, '8443/tcp');
    expect(ports).toBe(`127.0.0.1:${h.gatewayHttpsPort}`);
  });

  it('serves a Pebble-issued certificate by SNI, redirects HTTP, renews once without dropping a connection, keeps serving while renewal fails', async () => {
    const manifest = `namespace = "shop"

[[services]]
name = "hello"
image = "ployz/hello:latest"
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "tls" }
stop_grace = "2s"

[[services.routes]]
http = { hostnames = ["${host}"], path = "/", tls = "auto", https_redirect = true }

[services.readiness]
http = { path = "/healthz" }
interval = "100ms"
retries = 50
`;
    const deployed = await d.deploy(await d.write('shop.toml', manifest));
    expect(deployed.code, JSON.stringify(deployed.last)).toBe(0);
    const root = await pebble.root();

    // 1. Issued through the challenge the gateway container answered; verifies against Pebble's root.
    const first = await until('first certificate served', 60_000, async () => {
      const hs = await handshake(root);
      if (hs.authorized) return hs;
      hs.socket.destroy();
      return undefined;
    });
    expect(first.authorizationError).toBeNull();
    const answer = await requestOn(first.socket, '/', host);
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('(version tls)');
    // From now until the renewal is served, this connection (on the first certificate) sends a
    // request every 500 ms: it must never be dropped.
    let kept = 0;
    let keepError: unknown = null;
    let keeping = true;
    const keepStart = Date.now();
    let keepFailedAfterMs = 0;
    const keep = (async () => {
      while (keeping) {
        try {
          if ((await requestOn(first.socket, '/', host)).status === 200) kept++;
        } catch (error) {
          keepError = error;
          keepFailedAfterMs = Date.now() - keepStart;
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    // A name without a certificate gets no handshake.
    await expect(handshake(root, `other-${h.id}.test`)).rejects.toThrow();

    // 2. https_redirect: plain HTTP through the published port is 308 to the same host and path.
    const plain = await gatewayGet({
      host: '127.0.0.1',
      port: h.gatewayPort,
      path: '/cart?id=1',
      hostHeader: host,
      timeoutMs: 5_000,
    });
    expect(plain.status).toBe(308);

    // cert ls / show: valid, the serial served, renewed by this machine.
    const listed = await until('cert ls valid', 10_000, async () => {
      const c = await cert();
      return c?.state === 'valid' ? c : undefined;
    });
    expect(BigInt(`0x${listed.serial}`)).toBe(BigInt(`0x${first.serial}`));
    expect(listed.renewer).toBe('m1');
    const shown = await h.ctl('cert', 'show', host);
    expect(shown.code).toBe(0);
    expect((shown.json as CertificateView).hostname).toBe(host);
    const unknown = await h.ctl('cert', 'show', `nope-${h.id}.test`);
    expect(unknown.code).toBe(2);
    expect((unknown.json as { error: { code: string } }).error.code).toBe('CERT_UNKNOWN');

    // 3. Renewal at two thirds of 30 s: a new serial on new handshakes, ordered once.
    const second = await until('renewed certificate served', 60_000, async () => {
      const hs = await handshake(root);
      hs.socket.destroy();
      return hs.serial !== first.serial && hs.authorized ? hs : undefined;
    });
    keeping = false;
    await keep;
    const gatewayLog = keepError === null ? '' : await docker('logs', '--tail', '30', `${h.prefix}gateway`);
    expect(
      keepError,
      `after ${kept} requests, ${keepFailedAfterMs} ms (serial ${second.serial}); ${gatewayLog}`,
    ).toBeNull();
    expect(kept).toBeGreaterThan(5);
    // A few passes later still two orders: the renewed certificate is not due again.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(issued()).toHaveLength(2);
    // The connection opened before the swap was not dropped and keeps its certificate.
    const again = await requestOn(first.socket, '/', host);
    expect(again.status).toBe(200);
    expect(first.socket.getPeerCertificate().serialNumber).toBe(first.serial);
    first.socket.destroy();

    // 4. Pebble down: the next renewal fails and says so; the renewed certificate keeps serving.
    await pebble.stop();
    const failing = await until('renewal reported failing', 90_000, async () => {
      const c = await cert();
      return c?.state === 'failing' ? c : undefined;
    });
    expect(failing.last_error?.code).toBe('ACME_ORDER_FAILED');
    expect(failing.failures).toBeGreaterThanOrEqual(1);
    const status = await h.ctl('status');
    const certificates = (
      status.json as { certificates: { failing: { hostname: string }[]; directory_url: string } }
    ).certificates;
    expect(certificates.failing.map((f) => f.hostname)).toEqual([host]);
    expect(certificates.directory_url).toBe(pebble.directoryUrl);
    expect(await h.human('status')).toContain(`renewal failing: ${host}`);
    const after = await handshake(root);
    after.socket.destroy();
    expect(after.serial).toBe(second.serial);
    expect(issued()).toHaveLength(2);
  }, 300_000);
});
