/**
 * Runs a real ployzd (from source, Node 24 type stripping) and ployzctl against the real dockerd
 * with a unique installation name, state dir, socket, bridge, subnet and container prefix, so a
 * test can never touch a real install or another test. `dispose()` removes every container and
 * network carrying the installation label (and the test label), kills the daemon and deletes the
 * state dir — also when the test failed.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type CommandRegistry, RpcClient } from '@ployz/protocol';
import { freePort } from '@ployz/testkit';

const run = promisify(execFile);
const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLOYZD = join(ROOT, 'apps/ployzd/src/main.ts');
const PLOYZCTL = join(ROOT, 'apps/ployzctl/bin/run.js');

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

export interface ComponentView {
  component: string;
  container_name: string;
  container_id: string | null;
  state: string;
  reason: string | null;
  detail: string | null;
  since: string | null;
  health: string;
  running: boolean;
}

export interface StatusJson {
  initialised: boolean;
  machine: {
    machine_id: string;
    subnet: string;
    overlay_ip: string;
    public_key: string;
    record_stored: boolean;
  } | null;
  reconcile: { adopted: number; created: number; recreated: number; problems: number; error: unknown } | null;
  components: ComponentView[];
  nats: { state: string; url: string } | null;
  agent: { listening: boolean; commands: string[] } | null;
}

export interface CtlResult {
  code: number;
  json: unknown;
  stdout: string;
  stderr: string;
}

async function pickSubnet(): Promise<string> {
  // Other tests create and remove networks meanwhile: inspect each one alone, a vanished network
  // is simply not in use.
  const ids = (await docker('network', 'ls', '-q')).split('\n').filter(Boolean);
  const used = (
    await Promise.all(
      ids.map((id) =>
        docker('network', 'inspect', '--format', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', id).catch(
          () => '',
        ),
      ),
    )
  ).join(' ');
  for (;;) {
    const subnet = `10.213.${20 + Math.floor(Math.random() * 230)}.0/24`;
    if (!used.includes(subnet)) return subnet;
  }
}

export class DaemonHarness implements AsyncDisposable {
  readonly id = randomBytes(3).toString('hex');
  readonly installation = `e2e-${this.id}`;
  readonly prefix = `e2e-${this.id}-`;
  readonly bridge = `e2e-${this.id}`;
  dir = '';
  subnet = '';
  gatewayPort = 0;
  gatewayHttpsPort = 0;
  wireguardPort = 0;
  componentEnv: Record<string, Record<string, string>> = {};
  images: Record<string, string> = {};
  extraArgs: string[] = [];
  proc: ChildProcess | null = null;
  logs: string[] = [];

  get socket(): string {
    return join(this.dir, 'ployzd.sock');
  }
  get stateDir(): string {
    return join(this.dir, 'state');
  }

  static async create(): Promise<DaemonHarness> {
    const h = new DaemonHarness();
    h.dir = await mkdtemp(join(tmpdir(), 'ployz-e2e-daemon-'));
    h.subnet = await pickSubnet();
    h.gatewayPort = await freePort();
    h.gatewayHttpsPort = await freePort();
    h.wireguardPort = await freePort();
    // Pin images by id: a concurrent `scripts/images.sh` rebuild must not read as drift here.
    for (const c of ['networking', 'nats', 'gateway', 'dns']) {
      h.images[c] = await docker('image', 'inspect', '--format', '{{.Id}}', `ployz/${c}:latest`);
    }
    return h;
  }

  names(): string[] {
    return ['networking', 'nats', 'gateway', 'dns'].map((c) => `${this.prefix}${c}`);
  }

  /** Start ployzd and wait until its socket answers. */
  async start(): Promise<ChildProcess> {
    const args = [
      '--conditions=ployz-source',
      PLOYZD,
      'run',
      '--state-dir',
      this.stateDir,
      '--socket-path',
      this.socket,
      '--container-prefix',
      this.prefix,
      '--bridge-name',
      this.bridge,
      '--subnet',
      this.subnet,
      '--gateway-port',
      String(this.gatewayPort),
      '--gateway-host-ip',
      '127.0.0.1',
      '--gateway-https-port',
      String(this.gatewayHttpsPort),
      // Never a public CA from a test: a test that orders certificates names its own directory.
      '--acme-directory',
      'off',
      '--wireguard-port',
      String(this.wireguardPort),
      '--component-env',
      JSON.stringify(this.componentEnv),
      ...Object.entries(this.images).flatMap(([c, id]) => [`--image-${c}`, id]),
      ...this.extraArgs,
    ];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout?.on('data', (d: Buffer) => this.logs.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => this.logs.push(d.toString()));
    this.proc = proc;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`ployzd exited ${proc.exitCode}: ${this.logs.join('')}`);
      if (existsSync(this.socket) && (await this.status()) !== null) return proc;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`ployzd did not answer on ${this.socket}: ${this.logs.join('')}`);
  }

  async kill9(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
    this.proc = null;
  }

  /** SIGTERM; resolves with the exit code. */
  async term(): Promise<number | null> {
    const proc = this.proc;
    if (!proc) return null;
    if (proc.exitCode !== null) return proc.exitCode;
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    const code = await exited;
    this.proc = null;
    return code;
  }

  /**
   * `ployzctl <args>` as typed, stdin fed, no `--json` appended; the socket comes from the
   * environment (a `--socket` after `--` would be part of `exec`'s command).
   */
  run(args: string[], stdin = ''): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        ['--conditions=ployz-source', PLOYZCTL, ...args],
        { timeout: 60_000, env: { ...process.env, PLOYZ_SOCKET_PATH: this.socket } },
        (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
      child.stdin?.end(stdin);
    });
  }

  async ctl(...args: string[]): Promise<CtlResult> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--conditions=ployz-source', PLOYZCTL, ...args, '--socket', this.socket, '--json'],
        { timeout: 120_000 },
        (error, stdout, stderr) => {
          const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
          let json: unknown = null;
          try {
            json = JSON.parse(stdout);
          } catch {
            json = null;
          }
          resolve({ code, json, stdout, stderr });
        },
      );
    });
  }

  /** Human (non-JSON) output of a ployzctl command. */
  async human(...args: string[]): Promise<string> {
    const { stdout } = await run(process.execPath, [
      '--conditions=ployz-source',
      PLOYZCTL,
      ...args,
      '--socket',
      this.socket,
    ]);
    return stdout;
  }

  /** ployzd's own NATS identity and url (its seed from the state dir), to connect as ployzd from the host's side of the guard. */
  async asPloyzd(): Promise<{ servers: string; nkeySeed: string }> {
    const nkeySeed = (await readFile(join(this.stateDir, 'nats-auth', 'ployzd.nk'), 'utf8')).trim();
    return { servers: `nats://${this.subnet.replace(/0\/24$/, '2')}:4222`, nkeySeed };
  }

  /** An RPC client for this installation's machine commands (`commands`), caller `e2e`. */
  rpc<R extends CommandRegistry>(
    nc: ConstructorParameters<typeof RpcClient<R>>[0]['nc'],
    commands: R,
    timeoutMs = 10_000,
  ): RpcClient<R> {
    return new RpcClient({
      nc,
      scope: { installation: this.installation, authority: 'auth-default' },
      commands,
      timeoutMs,
      caller: 'e2e',
    });
  }

  /** GET /v1/status straight over the socket (polling without spawning ployzctl each time). */
  status(): Promise<StatusJson | null> {
    return new Promise((resolve) => {
      const req = httpRequest({ socketPath: this.socket, path: '/v1/status', method: 'GET' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => {
          text += d.toString();
        });
        res.on('end', () => {
          try {
            resolve((JSON.parse(text) as { result?: StatusJson }).result ?? null);
          } catch {
            resolve(null);
          }
        });
        res.on('close', () => resolve(null)); // after 'end' a no-op; cut short: not answering
      });
      req.on('error', () => resolve(null));
      // A ployzd that accepts and never answers is "not answering", not a test that hangs.
      req.setTimeout(10_000, () => req.destroy());
      req.end();
    });
  }

  /** Status once the startup reconcile has finished. */
  /** Starts ployzd, runs `machine init` (machine m1) and waits for the first pass to settle. */
  async startInitialised(): Promise<StatusJson> {
    await this.start();
    const init = await this.ctl('machine', 'init', '--id', 'm1', '--installation', this.installation);
    if (init.code !== 0) throw new Error(`machine init failed (${init.code}): ${this.logs.join('')}`);
    return this.settledStatus();
  }

  async settledStatus(): Promise<StatusJson> {
    return this.waitFor(
      (s) => s.reconcile !== null && s.components.every((c) => c.state !== 'pending'),
      'settled',
      60_000,
    );
  }

  async waitFor(
    predicate: (s: StatusJson) => boolean,
    what: string,
    timeoutMs = 30_000,
  ): Promise<StatusJson> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.status();
      if (s && predicate(s)) return s;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(s)}`);
      await new Promise((res) => setTimeout(res, 150));
    }
  }

  /** container name → id of every container this installation's components hold. */
  async containerIds(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const lines = await docker(
      'ps',
      '-a',
      '--filter',
      `label=ployz.installation=${this.installation}`,
      '--format',
      '{{.Names}} {{.ID}}',
    );
    for (const line of lines.split('\n').filter(Boolean)) {
      const [name = '', id = ''] = line.split(' ');
      out[name] = id;
    }
    return out;
  }

  async fullId(name: string): Promise<string | null> {
    try {
      return await docker('inspect', '--format', '{{.Id}}', name);
    } catch {
      return null;
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill9().catch(() => {});
    for (const label of [`ployz.installation=${this.installation}`, `ployz.test=${this.installation}`]) {
      const ids = (await docker('ps', '-aq', '--filter', `label=${label}`).catch(() => ''))
        .split('\n')
        .filter(Boolean);
      if (ids.length > 0) await docker('rm', '-f', ...ids).catch(() => '');
    }
    const nets = (
      await docker('network', 'ls', '-q', '--filter', `label=ployz.installation=${this.installation}`).catch(
        () => '',
      )
    )
      .split('\n')
      .filter(Boolean);
    if (nets.length > 0) await docker('network', 'rm', ...nets).catch(() => '');
    await rm(this.dir, { recursive: true, force: true });
  }
}
