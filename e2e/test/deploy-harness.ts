/**
 * Deploy scenarios on top of the daemon harness: a running single-node install, manifests written
 * to its temp dir, `ployzctl deploy` streamed as NDJSON, requests through ployz-gateway.
 */
import { execFile, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DaemonHarness, docker } from './daemon-harness.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const PLOYZCTL = join(ROOT, 'apps/ployzctl/bin/run.js');
const keepAlive = new Agent({ keepAlive: true, maxSockets: 4 });

/** One GET through a gateway with a Host header; the body as text. */
export function gatewayGet(target: {
  host: string;
  port: number;
  path: string;
  hostHeader: string;
  agent?: Agent;
  timeoutMs: number;
}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.host,
        port: target.port,
        path: target.path,
        headers: { host: target.hostHeader },
        ...(target.agent ? { agent: target.agent } : {}),
        timeout: target.timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

export type DeployLine = { type: string } & Record<string, unknown>;

export interface HelloOptions {
  version: string;
  image?: string;
  readiness?: string;
  host: string;
  namespace?: string;
}

export function helloManifest(o: HelloOptions): string {
  return `namespace = "${o.namespace ?? 'demo'}"

[[services]]
name = "hello"
image = "${o.image ?? 'ployz/hello:latest'}"
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${o.version}" }
stop_grace = "2s"

[[services.routes]]
http = { hostnames = ["${o.host}"], path = "/" }

[services.readiness]
${o.readiness ?? 'http = { path = "/healthz" }\ninterval = "100ms"\nretries = 50'}
`;
}

export class DeployHarness {
  readonly h: DaemonHarness;
  readonly host: string;

  constructor(h: DaemonHarness) {
    this.h = h;
    this.host = `hello-${h.id}.localhost`;
  }

  /** A started, initialised daemon whose deploy engine answers. */
  static async up(): Promise<{ h: DaemonHarness; d: DeployHarness }> {
    const h = await DaemonHarness.create();
    await h.start();
    const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
    if (init.code !== 0) throw new Error(`machine init failed: ${init.stdout} ${init.stderr}`);
    const d = new DeployHarness(h);
    await d.engineReady();
    return { h, d };
  }

  async engineReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.h.ctl('deploy', 'ls');
      if (r.code === 0) return;
      if (Date.now() > deadline)
        throw new Error(`deploy engine never answered: ${r.stdout} ${r.stderr}\n${this.h.logs.join('')}`);
      await new Promise((res) => setTimeout(res, 250));
    }
  }

  async write(name: string, text: string): Promise<string> {
    const path = join(this.h.dir, name);
    await writeFile(path, text);
    return path;
  }

  /** `ployzctl deploy -f <file> --json`: every NDJSON line, and the exit code. */
  async deploy(
    file: string,
    onLine?: (l: DeployLine) => void,
  ): Promise<{ code: number; lines: DeployLine[]; last: DeployLine | undefined }> {
    return this.stream(['deploy', '-f', file], onLine);
  }

  async rollback(id: string): Promise<{ code: number; lines: DeployLine[]; last: DeployLine | undefined }> {
    return this.stream(['deploy', 'rollback', id]);
  }

  stream(
    args: string[],
    onLine?: (l: DeployLine) => void,
  ): Promise<{ code: number; lines: DeployLine[]; last: DeployLine | undefined }> {
    return new Promise((resolve) => {
      const child = spawn(
        process.execPath,
        ['--conditions=ployz-source', PLOYZCTL, ...args, '--json', '--socket', this.h.socket],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const lines: DeployLine[] = [];
      let buf = '';
      child.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        let nl = buf.indexOf('\n');
        while (nl >= 0) {
          const text = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          nl = buf.indexOf('\n');
          if (!text) continue;
          try {
            const line = JSON.parse(text) as DeployLine;
            lines.push(line);
            onLine?.(line);
          } catch {
            // not JSON (oclif warnings)
          }
        }
      });
      child.on('exit', (code) => resolve({ code: code ?? 1, lines, last: lines.at(-1) }));
    });
  }

  /** GET through ployz-gateway with this harness's Host header (fetch may not set Host). */
  viaGateway(path = '/'): Promise<{ status: number; body: string }> {
    return gatewayGet({
      host: '127.0.0.1',
      port: this.h.gatewayPort,
      path,
      hostHeader: this.host,
      agent: keepAlive,
      timeoutMs: 5000,
    });
  }

  /** Waits until the gateway serves `version`. */
  async waitServing(version: string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        const r = await this.viaGateway();
        last = `${r.status} ${r.body}`;
        if (r.status === 200 && r.body.includes(`(version ${version})`)) return;
      } catch (e) {
        last = String(e);
      }
      if (Date.now() > deadline)
        throw new Error(`gateway never served ${version}; last: ${last}\n${this.h.logs.slice(-30).join('')}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  /** Workload containers of this installation: name → id. */
  async workloads(): Promise<Record<string, string>> {
    const out = await docker(
      'ps',
      '-a',
      '--filter',
      `label=ployz.installation=${this.h.installation}`,
      '--filter',
      'label=ployz.kind=workload',
      '--format',
      '{{.Names}} {{.ID}}',
    );
    return Object.fromEntries(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ') as [string, string]),
    );
  }

  async ctlJson<T>(...args: string[]): Promise<T> {
    const { stdout } = await run(process.execPath, [
      '--conditions=ployz-source',
      PLOYZCTL,
      ...args,
      '--json',
      '--socket',
      this.h.socket,
    ]);
    return JSON.parse(stdout) as T;
  }
}

/** One JSON line of a ployzctl stream (`logs --json`, `exec`/`namespace rm --json` events). */
export type StreamEntry = {
  type: string;
  instance?: string;
  machine?: string;
  text?: string;
  at?: string;
  event?: string;
};

/** The complete JSON lines of a stream's output so far (a partial last line is left out). */
export const jsonLines = (text: string): StreamEntry[] =>
  text
    .slice(0, text.lastIndexOf('\n') + 1)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StreamEntry);
