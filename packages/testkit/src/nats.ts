/**
 * A real nats-server with JetStream on a free port in a temp dir, as a disposable fixture:
 *
 *   await using nats = await startNats();
 *   const nc = await connect({ servers: nats.url });
 *
 * `stop()`/dispose kills the process and removes the directory. `kill()` sends SIGKILL and keeps
 * the data dir so `restart()` brings the same server back on the same port (crash tests).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { killChild, stopChild } from './child.ts';

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly pid: number | undefined;
  /** SIGKILL, keeping the data directory. */
  kill(): Promise<void>;
  /** Start again on the same port and data directory. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsOptions {
  /** fsync every write (`sync_interval: always`; needs nats-server ≥ 2.10). Default false. */
  syncAlways?: boolean;
  binary?: string;
  /**
   * Config text appended to the server's file — the auth-enabled mode: pass an `authorization {
   * users: [...] }` block and the server refuses anonymous connections. Default none (open).
   */
  extraConfig?: string;
  /**
   * A config file (absolute path) the server's config includes — one a test rewrites and then
   * reloads with SIGHUP (`pid`), the way ployz-nats reads ployzd's nats.conf.
   */
  include?: string;
  /** Listen on this client port (default: a free one). */
  port?: number;
  /** `server_name` (needed by clustered JetStream). */
  serverName?: string;
  /** Join a cluster: this server's route port, the cluster name and every member's route port. */
  cluster?: { name: string; port: number; routes: number[] };
  /** Run JetStream (default true); false for a leaf that reaches a hub's JetStream. */
  jetstream?: boolean;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, host);
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startNats(options: NatsOptions = {}): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), 'ployz-nats-'));
  const port = options.port ?? (await freePort());
  const binary = options.binary ?? 'nats-server';
  const syncAlways = options.syncAlways ?? false;
  let child: ChildProcess | undefined;

  const launch = async () => {
    // `sync_interval` is only settable from a config file, so everything goes there.
    const conf = join(dir, 'nats.conf');
    const sync = syncAlways ? ', sync_interval: always' : '';
    const name = options.serverName ? `server_name: "${options.serverName}"\n` : '';
    const c = options.cluster;
    const cluster = c
      ? `cluster { name: "${c.name}", listen: "127.0.0.1:${c.port}", routes: [${c.routes
          .map((r) => `"nats-route://127.0.0.1:${r}"`)
          .join(', ')}] }\n`
      : '';
    await writeFile(
      conf,
      `${name}listen: "127.0.0.1:${port}"\n${options.jetstream === false ? '' : `jetstream { store_dir: "${dir}"${sync} }\n`}${cluster}${options.extraConfig ?? ''}\n` +
        // nats-server resolves an include relative to the including file, even an absolute one.
        (options.include ? `include "${relative(dir, options.include)}"\n` : ''),
    );
    const args = ['-c', conf];
    const proc = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.on('data', (b: Buffer) => {
      stderr = (stderr + b.toString()).slice(-4000);
    });
    const failed = new Promise<never>((_, reject) =>
      proc.once('exit', (code) =>
        reject(new Error(`nats-server exited (${code}) before listening: ${stderr}`)),
      ),
    );
    failed.catch(() => {});
    await Promise.race([waitForPort(port), failed]);
    child = proc;
  };

  const kill = async () => {
    if (child) await killChild(child);
    child = undefined;
  };

  try {
    await launch();
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: dir,
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
      return server.stop();
    },
  };
  return server;
}

export interface NatsCluster extends AsyncDisposable {
  readonly servers: readonly NatsServer[];
  /** Every member's client URL (pass all to a client so it fails over). */
  readonly urls: string[];
  /** With `leafnodes`: every member's leafnode URL, in member order (`nats-leaf://127.0.0.1:p`). */
  readonly leafUrls: string[];
  stop(): Promise<void>;
}

/**
 * `size` clustered nats-servers with JetStream on loopback (`s1`…, routes to each other). Each
 * member can be `kill()`ed (SIGKILL) and `restart()`ed on its port and data directory. Resolves
 * once the JetStream meta group has a leader (every member answers `$JS.API.INFO`).
 */
export async function startNatsCluster(
  options: {
    size?: number;
    name?: string;
    readyTimeoutMs?: number;
    /**
     * Each member also accepts leafnode connections (as ployz-nats-store does): a leaf server's
     * clients reach the cluster's JetStream (`default_js_domain`, as on ployz's servers).
     */
    leafnodes?: boolean;
  } = {},
): Promise<NatsCluster> {
  const size = options.size ?? 3;
  const name = options.name ?? 'ployz-test';
  const { servers, leafPorts } = await startMembers(size, name, options.leafnodes ?? false);
  const cluster: NatsCluster = {
    servers,
    urls: servers.map((s) => s.url),
    leafUrls: leafPorts.map((p) => `nats-leaf://127.0.0.1:${p}`),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
    },
    [Symbol.asyncDispose]() {
      return cluster.stop();
    },
  };
  try {
    await waitForMetaLeader(servers, options.readyTimeoutMs ?? 20_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/**
 * Starts the members on fresh ports. A port picked free can be taken by another process before
 * its server binds it (tests run in parallel): then that member exits before listening, the
 * others are stopped, and the cluster is tried again on new ports (three attempts).
 */
async function startMembers(
  size: number,
  name: string,
  leafnodes: boolean,
): Promise<{ servers: NatsServer[]; leafPorts: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
    const leafPorts = leafnodes ? await Promise.all(routes.map(() => freePort())) : [];
    const started = await Promise.allSettled(
      routes.map((port, i) =>
        startNats({
          serverName: `s${i + 1}`,
          cluster: { name, port, routes },
          ...(leafnodes
            ? {
                extraConfig: `default_js_domain: { "$G": "" }\nleafnodes { listen: "127.0.0.1:${leafPorts[i]}" }\n`,
              }
            : {}),
        }),
      ),
    );
    const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (servers.length === size) return { servers, leafPorts };
    await Promise.all(servers.map((s) => s.stop()));
    const failure = started.find((r) => r.status === 'rejected');
    if (attempt === 3)
      throw failure?.status === 'rejected' ? failure.reason : new Error('cluster start failed');
  }
}

/** Polls each member's monitoring-free JetStream API until one reports a meta leader. */
async function waitForMetaLeader(servers: readonly NatsServer[], timeoutMs: number): Promise<void> {
  const { connect } = await import('@nats-io/transport-node');
  const deadline = Date.now() + timeoutMs;
  for (const s of servers) {
    const nc = await connect({ servers: s.url });
    try {
      for (;;) {
        const ok = await nc
          .request('$JS.API.INFO', undefined, { timeout: 1000 })
          .then((m) => !('error' in (m.json() as object)))
          .catch(() => false);
        if (ok) break;
        if (Date.now() > deadline) throw new Error(`no JetStream meta leader after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await nc.close();
    }
  }
}
