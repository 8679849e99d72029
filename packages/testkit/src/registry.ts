/**
 * A real image registry — Debian's `docker-registry` (CNCF Distribution 2.8) — on a free loopback
 * port with its own config and storage in a temp dir, as a disposable fixture:
 *
 *   await using registry = await startRegistry();
 *   // docker tag ployz/hello:latest ${registry.host}/ployz/hello:1 && docker push …
 *
 * dockerd treats registries on 127.0.0.0/8 as insecure-allowed, so a push or pull to
 * `127.0.0.1:PORT/…` works over plain HTTP with no daemon configuration. A dockerd in another
 * network namespace reaches it only through an address routed to this one (`listen`).
 *
 * `stop()`/dispose kills the process and removes the directory. `kill()` sends SIGKILL and keeps
 * the storage so `restart()` brings the same registry back on the same port with its blobs.
 *
 * `auth: { username, password }` turns on Distribution's htpasswd auth (basic auth over plain
 * HTTP, which dockerd sends to a loopback registry): the bcrypt line is made by the system's
 * crypt(3) through perl (libxcrypt on Debian), so no extra package is needed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { killChild, stopChild } from './child.ts';
import { freePort } from './nats.ts';

export interface Registry extends AsyncDisposable {
  /** `http://HOST:PORT` */
  readonly url: string;
  /** `HOST:PORT` — the prefix of an image reference (`${host}/ployz/gateway:0.1.0`). */
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  readonly storageDir: string;
  readonly pid: number | undefined;
  /** SIGKILL, keeping the storage directory. */
  kill(): Promise<void>;
  /** Start again on the same address and storage. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Listen address (default 127.0.0.1). */
  listen?: string;
  /** Port (default: a free one). */
  port?: number;
  binary?: string;
  readyTimeoutMs?: number;
  /** htpasswd auth with this one user; without it the registry takes anyone. */
  auth?: { username: string; password: string };
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `user:$2b$…`: a bcrypt htpasswd line from crypt(3) (perl's crypt is libc's). */
export async function htpasswdLine(username: string, password: string): Promise<string> {
  const bytes = randomBytes(22);
  // 22 salt characters; the last carries only 2 bits, so it is one of . O e u.
  const salt =
    [...bytes.subarray(0, 21)].map((b) => BCRYPT_ALPHABET[b & 63]).join('') + '.Oeu'[(bytes[21] ?? 0) & 3];
  const { stdout } = await promisify(execFile)('perl', [
    '-e',
    'print crypt($ARGV[0], $ARGV[1])',
    password,
    `$2b$05$${salt}`,
  ]);
  if (!stdout.startsWith('$2b$05$') || stdout.length !== 60)
    throw new Error(`crypt(3) gave no bcrypt hash (${stdout.slice(0, 8)}…); libxcrypt is needed`);
  return `${username}:${stdout}`;
}

/** GET `url`: the status, headers and body (text), or undefined when nothing answers. */
export async function httpGet(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<
  { status: number; headers: Record<string, string | string[] | undefined>; body: string } | undefined
> {
  return new Promise((resolve) => {
    const req = request(url, { method, headers, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

export async function startRegistry(options: RegistryOptions = {}): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-registry-'));
  const storageDir = join(dir, 'storage');
  const listen = options.listen ?? '127.0.0.1';
  const binary = options.binary ?? 'docker-registry';
  const readyTimeoutMs = options.readyTimeoutMs ?? 15_000;
  let port = options.port ?? 0;
  let child: ChildProcess | undefined;

  const launch = async () => {
    if (port === 0) port = await freePort();
    await mkdir(storageDir, { recursive: true });
    const conf = join(dir, 'config.yml');
    const htpasswd = join(dir, 'htpasswd');
    if (options.auth !== undefined)
      await writeFile(htpasswd, `${await htpasswdLine(options.auth.username, options.auth.password)}\n`);
    await writeFile(
      conf,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${storageDir}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${listen}:${port}`,
        ...(options.auth === undefined
          ? []
          : ['auth:', '  htpasswd:', '    realm: ployz-test', `    path: ${htpasswd}`]),
        '',
      ].join('\n'),
    );
    const proc = spawn(binary, ['serve', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const failed = new Promise<never>((_, reject) => {
      proc.once('error', (err) =>
        reject(
          new Error(
            `${binary} did not start (${err.message}); install Debian's docker-registry (scripts/setup.sh)`,
          ),
        ),
      );
      proc.once('exit', (code) =>
        reject(new Error(`${binary} exited (${code}) before answering GET /v2/: ${stderr}`)),
      );
    });
    failed.catch(() => {});
    const ready = (async () => {
      const deadline = Date.now() + readyTimeoutMs;
      for (;;) {
        const res = await httpGet(`http://${listen}:${port}/v2/`);
        // With auth, /v2/ answers 401 to an anonymous GET once it serves.
        if (res?.status === 200 || (options.auth !== undefined && res?.status === 401)) return;
        if (Date.now() > deadline)
          throw new Error(
            `${binary} on ${listen}:${port} did not answer GET /v2/ within ${readyTimeoutMs} ms`,
          );
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await Promise.race([ready, failed]);
    } catch (err) {
      await killChild(proc);
      throw err;
    }
    child = proc;
  };

  const kill = async () => {
    if (child) await killChild(child);
    child = undefined;
  };

  // A port picked free can be taken before the registry binds it (tests run in parallel): try
  // again on a new one, unless the caller chose the port.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (options.port !== undefined || attempt === 3) {
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
      port = 0;
    }
  }

  const registry: Registry = {
    url: `http://${listen}:${port}`,
    host: `${listen}:${port}`,
    port,
    dir,
    storageDir,
    get pid() {
      return child?.pid;
    },
    kill,
    restart: launch,
    async stop() {
      if (child) await stopChild(child);
      child = undefined;
      await rm(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() {
      return registry.stop();
    },
  };
  return registry;
}
