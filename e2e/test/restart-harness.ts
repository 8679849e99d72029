/**
 * Issue 14's rig on a dockerd the test owns (in a netns host): ployzd under ployzd-supervise.sh
 * (as scripts/up.sh runs it without systemd), three tenants' services behind the gateway, and a
 * load loop that checks every response body for its own service.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createNetnsHost,
  type NetnsHost,
  type RestartableDockerd,
  startRestartableDockerd,
} from '@ployz/testkit';
import { DaemonHarness } from './daemon-harness.ts';
import { DeployHarness, gatewayGet, helloManifest } from './deploy-harness.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLOYZD = join(ROOT, 'apps/ployzd/src/main.ts');
const SUPERVISE = join(ROOT, 'apps/ployzd/bin/ployzd-supervise.sh');
export const TENANTS = ['alpha', 'beta', 'gamma'] as const;

export interface Sample {
  at: number;
  tenant: string;
  outcome: 'own' | 'wrong' | 'failed';
  detail: string;
}

export interface Window {
  from: number;
  until: number;
}

export class RestartRig implements AsyncDisposable {
  /** The supervisor (bash running ployzd-supervise.sh), null once stopped. */
  supervisor: ChildProcess | null = null;
  d!: DeployHarness;

  readonly name: string;
  readonly host: NetnsHost;
  readonly dockerd: RestartableDockerd;
  readonly h: DaemonHarness;

  private constructor(name: string, host: NetnsHost, dockerd: RestartableDockerd, h: DaemonHarness) {
    this.name = name;
    this.host = host;
    this.dockerd = dockerd;
    this.h = h;
  }

  /** Netns host, dockerd, images, ployzd under its supervisor, machine init, three tenants serving. */
  static async create(name: string): Promise<RestartRig> {
    const host = await createNetnsHost(name);
    const dockerd = await startRestartableDockerd(host);
    const h = await DaemonHarness.create();
    const rig = new RestartRig(name, host, dockerd, h);
    try {
      await dockerd.loadImages([...Object.values(h.images), 'ployz/hello:latest']);
      for (const [c, id] of Object.entries(h.images))
        await dockerd.docker.getImage(id).tag({ repo: `ployz/${c}`, tag: 'latest' });
      rig.log('images loaded');
      await rig.startPloyzd();
      const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
      if (init.code !== 0)
        throw new Error(`machine init failed: ${init.stdout} ${init.stderr}\n${await rig.ployzdLog()}`);
      rig.d = new DeployHarness(h);
      await rig.d.engineReady(120_000);
      for (const t of TENANTS) {
        const file = await rig.d.write(
          `${t}.toml`,
          helloManifest({ version: t, host: rig.hostname(t), namespace: t }),
        );
        const r = await rig.d.deploy(file);
        if (r.code !== 0)
          throw new Error(`deploy ${t} failed: ${JSON.stringify(r.last)}\n${await rig.ployzdLog()}`);
      }
      await rig.allServeOwn(60_000);
      rig.log('three tenants serving');
    } catch (e) {
      await rig[Symbol.asyncDispose]();
      throw e;
    }
    return rig;
  }

  log(m: string): void {
    console.log(`[${this.name} +${(performance.now() / 1000).toFixed(1)}s] ${m}`);
  }

  hostname(t: string): string {
    return `${t}-${this.h.id}.localhost`;
  }

  logFile(): string {
    return join(this.h.dir, 'ployzd.log');
  }

  async ployzdLog(): Promise<string> {
    return (await readFile(this.logFile(), 'utf8').catch(() => '')).split('\n').slice(-40).join('\n');
  }

  /**
   * ployzd inside the netns (it reaches ployz-nats and workloads over the netns bridge), kept
   * running by ployzd-supervise.sh; resolves once it answers on its socket.
   */
  async startPloyzd(): Promise<void> {
    const { h, host, dockerd } = this;
    const args = [
      '--conditions=ployz-source',
      PLOYZD,
      'run',
      ...['--state-dir', h.stateDir, '--socket-path', h.socket, '--container-prefix', h.prefix],
      ...['--bridge-name', h.bridge, '--subnet', h.subnet, '--docker-socket', dockerd.socketPath],
      ...['--gateway-port', String(h.gatewayPort), '--gateway-host-ip', host.address],
      ...['--wireguard-port', String(h.wireguardPort), '--component-env', JSON.stringify(h.componentEnv)],
      // Never a public CA from a test (a test that orders certificates names its own directory).
      ...['--acme-directory', 'off'],
      ...Object.entries(h.images).flatMap(([c, id]) => [`--image-${c}`, id]),
    ];
    const proc = host.spawn('bash', [SUPERVISE, this.logFile(), '--', process.execPath, ...args]);
    this.supervisor = proc;
    for (;;) {
      if (proc.exitCode !== null)
        throw new Error(`the supervisor exited ${proc.exitCode}: ${await this.ployzdLog()}`);
      if (existsSync(h.socket) && (await h.status()) !== null) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async daemonView(): Promise<{ pid: number; supervisor?: string } | null> {
    const r = await this.h.ctl('status');
    const view = r.json as { daemon?: { pid: number; supervisor?: string } } | null;
    return r.code === 0 && view?.daemon ? view.daemon : null;
  }

  get(name: string): Promise<{ status: number; body: string }> {
    return gatewayGet({
      host: this.host.address,
      port: this.h.gatewayPort,
      path: '/',
      hostHeader: name,
      timeoutMs: 2000,
    });
  }

  /** One request per tenant in turn until stopped; every body is checked for its own service. */
  loadLoop(tenants: readonly string[]): { samples: Sample[]; stop: () => Promise<void> } {
    const samples: Sample[] = [];
    let running = true;
    const done = (async () => {
      while (running) {
        for (const t of tenants) {
          const at = performance.now();
          try {
            const r = await this.get(this.hostname(t));
            const own = r.status === 200 && r.body.includes(`(version ${t})`);
            const wrong = r.status === 200 && !own;
            samples.push({
              at,
              tenant: t,
              outcome: own ? 'own' : wrong ? 'wrong' : 'failed',
              detail: `${r.status} ${r.body.slice(0, 80)}`,
            });
          } catch (e) {
            samples.push({ at, tenant: t, outcome: 'failed', detail: String(e) });
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
    })();
    return {
      samples,
      stop: async () => {
        running = false;
        await done;
      },
    };
  }

  async allServeOwn(timeoutMs: number, tenants: readonly string[] = TENANTS): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const answers = await Promise.all(
        tenants.map((t) => this.get(this.hostname(t)).catch((e) => ({ status: 0, body: String(e) }))),
      );
      if (answers.every((a, i) => a.status === 200 && a.body.includes(`(version ${tenants[i]})`))) return;
      if (performance.now() > deadline) {
        throw new Error(
          `not every tenant serves its own: ${JSON.stringify(answers)}\n${await this.ployzdLog()}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.supervisor?.kill('SIGTERM');
    await this.dockerd[Symbol.asyncDispose]();
    await this.h[Symbol.asyncDispose]();
    await this.host[Symbol.asyncDispose]();
  }
}

/** Samples by outcome; `outside` are the failures outside every window. */
export function tally(samples: Sample[], windows: Window[]) {
  const wrong = samples.filter((s) => s.outcome === 'wrong');
  const failed = samples.filter((s) => s.outcome === 'failed');
  const outside = failed.filter((s) => !windows.some((w) => s.at >= w.from && s.at <= w.until));
  const own = samples.filter((s) => s.outcome === 'own');
  const lengths = windows.map((w) => ((w.until - w.from) / 1000).toFixed(1)).join(', ');
  return { wrong, failed, outside, own, lengths };
}
