/**
 * A real Pebble ACME server (Debian package `pebble`) on loopback, with `pebble-challtestsrv` as
 * its DNS (every name → `resolveTo`, 127.0.0.1 by default; `resolveTo(ip)` changes it while it
 * runs), so Pebble's HTTP-01 validation reaches a gateway's HTTP port for whatever hostname a
 * test orders. Both processes are started here and stopped by their PID. Pebble's own HTTPS
 * certificate is a throwaway self-signed one (openssl); the issuing root is fetched from
 * Pebble's management endpoint. Never a public CA in tests.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killChild } from './child.ts';
import { freePort, waitForPort } from './nats.ts';

const run = promisify(execFile);

export interface PebbleOptions {
  /** The port Pebble's VA connects to for HTTP-01 (the gateway's plain HTTP port). */
  httpPort: number;
  /** Issued certificates' lifetime, seconds. */
  validitySeconds: number;
  /** The address every name resolves to for Pebble's validation (default 127.0.0.1). */
  resolveTo?: string;
  /**
   * The address Pebble's directory listens on (default 127.0.0.1): e.g. the host end of a netns
   * machine's veth, so a ployzd inside that netns can order. Its listener certificate names it.
   */
  listenAddress?: string;
}

export interface Pebble extends AsyncDisposable {
  readonly directoryUrl: string;
  /** PEM of the CA that signs Pebble's own listener (trust it for the directory). */
  readonly listenerCaFile: string;
  /** PEM of the root Pebble issues under (from its management endpoint). */
  root(): Promise<string>;
  /** Every name resolves to `ip` from now on (pebble-challtestsrv's default A record). */
  resolveTo(ip: string): Promise<void>;
  /** Pebble's output so far (the last 200 chunks), for a failure message. */
  log(): string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv, log: string[]): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const keep = (b: Buffer) => {
    log.push(b.toString());
    if (log.length > 200) log.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return child;
}

export async function startPebble(options: PebbleOptions): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-pebble-'));
  const [acmePort, mgmtPort, dnsPort, dnsMgmtPort, tlsPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const listen = options.listenAddress ?? '127.0.0.1';
  const cert = join(dir, 'listener.pem');
  const key = join(dir, 'listener.key');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=localhost',
    '-addext',
    `subjectAltName=DNS:localhost,IP:127.0.0.1${listen === '127.0.0.1' ? '' : `,IP:${listen}`}`,
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  const config = join(dir, 'pebble.json');
  await writeFile(
    config,
    JSON.stringify({
      pebble: {
        listenAddress: `${listen}:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: cert,
        privateKey: key,
        httpPort: options.httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        certificateValidityPeriod: options.validitySeconds,
      },
    }),
  );
  const log: string[] = [];
  const dns = launch(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-management',
      `127.0.0.1:${dnsMgmtPort}`,
      '-defaultIPv4',
      options.resolveTo ?? '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    {},
    log,
  );
  await waitForPort(dnsMgmtPort);
  let pebble: ChildProcess | undefined;
  const start = async () => {
    pebble = launch(
      'pebble',
      ['-config', config, '-dnsserver', `127.0.0.1:${dnsPort}`],
      // No random validation sleeps, no spurious bad nonces, and no authorization reuse: every
      // order is validated against the gateway again.
      { PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
      log,
    );
    await waitForPort(acmePort, listen);
    await waitForPort(mgmtPort);
  };
  await start();
  const stop = async () => {
    if (pebble) await killChild(pebble);
  };
  let rootPem: string | undefined;
  return {
    directoryUrl: `https://${listen}:${acmePort}/dir`,
    listenerCaFile: cert,
    root: async () => {
      const ca = await readFile(cert, 'utf8');
      rootPem ??= await new Promise<string>((resolve, reject) => {
        const req = https.get(
          { host: '127.0.0.1', port: mgmtPort, path: '/roots/0', ca, servername: 'localhost' },
          (res) => {
            let body = '';
            res.on('data', (d: Buffer) => {
              body += d.toString();
            });
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
      });
      return rootPem;
    },
    resolveTo: async (ip: string) => {
      const response = await fetch(`http://127.0.0.1:${dnsMgmtPort}/set-default-ipv4`, {
        method: 'POST',
        body: JSON.stringify({ ip }),
      });
      if (!response.ok) throw new Error(`pebble-challtestsrv: set-default-ipv4 ${response.status}`);
    },
    log: () => log.join(''),
    stop,
    start,
    [Symbol.asyncDispose]: async () => {
      await stop();
      await killChild(dns);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
