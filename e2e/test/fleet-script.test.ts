/**
 * `scripts/fleet.sh` (issue 18 item 8) as a user runs it: `up 2` makes two netns machines (own
 * dockerd, ployzd, data plane, wg0) with m2 joined by invite from m1; `up 2` again changes nothing
 * (same PIDs); a deploy of two replicas through `ctl m1` is served by m2's gateway (`gw m2`) from
 * both machines; `cut m2` makes m2 unreachable from m1 and `heal m2` brings it back; `down` leaves
 * no netns, link, process or directory it made. Runs as fleet 9 (PLOYZ_FLEET=9) so it never touches
 * a user's fleet 0. Needs root and the images (bash scripts/images.sh).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helloManifest } from './deploy-harness.ts';
import { until } from './fleet-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('fleet-script.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('fleet-script.test.ts SKIPPED: not root');

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FLEET_SH = join(ROOT, 'scripts/fleet.sh');
const FLEET = '9';
const STATE = `/run/ployz-fleet-${FLEET}`;
const HOST = 'hello-fleet-script.localhost';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(command: string, args: string[], timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { timeout: timeoutMs, env: { ...process.env, PLOYZ_FLEET: FLEET }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

const fleet = (args: string[], timeoutMs?: number) => exec('bash', [FLEET_SH, ...args], timeoutMs);

async function pids(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const m of ['m1', 'm2']) {
    for (const p of ['docker', 'ployzd']) {
      out[`${m}/${p}`] = Number(await readFile(join(STATE, m, `${p}.pid`), 'utf8'));
    }
  }
  return out;
}

interface Listed {
  id: string;
  live: { reachable: boolean };
}

async function machines(): Promise<Listed[] | null> {
  const r = await fleet(['ctl', 'm1', 'machine', 'ls', '--json']);
  if (r.code !== 0) return null;
  return (JSON.parse(r.stdout) as { machines: Listed[] }).machines;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

describe.skipIf(!isRoot)('scripts/fleet.sh: up, ctl, gw, cut, heal, down', () => {
  let dir = '';
  let started: Record<string, number> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ployz-fleet-script-'));
    // Leftovers of a run of this file that was killed.
    await fleet(['down'], 180_000);
  }, 200_000);
  afterAll(async () => {
    await fleet(['down'], 180_000);
    await rm(dir, { recursive: true, force: true });
  }, 200_000);

  it('up 2 makes two machines, m2 joined; up 2 again keeps every process', async () => {
    const up = await fleet(['up', '2'], 300_000);
    expect(up.code, `${up.stdout}${up.stderr}`).toBe(0);
    started = await pids();
    for (const pid of Object.values(started)) expect(alive(pid)).toBe(true);
    const again = await fleet(['up', '2'], 120_000);
    expect(again.code, `${again.stdout}${again.stderr}`).toBe(0);
    expect(again.stdout).not.toContain('machine join');
    expect(await pids()).toEqual(started);
    const listed = await machines();
    expect(listed?.map((m) => [m.id, m.live.reachable])).toEqual([
      ['m1', true],
      ['m2', true],
    ]);
  }, 420_000);

  it('a deploy through ctl m1 with two replicas is served from both machines by gw m2', async () => {
    const manifest = join(dir, 'hello.toml');
    await writeFile(
      manifest,
      `${helloManifest({ host: HOST, version: 'v1' })}\n[services.placement]\nreplicas = 2\n`,
    );
    const deploy = await fleet(['ctl', 'm1', 'deploy', '-f', manifest], 120_000);
    expect(deploy.code, `${deploy.stdout}${deploy.stderr}`).toBe(0);
    const gw = (await fleet(['gw', 'm2'])).stdout.trim();
    expect(gw).toMatch(/^http:\/\/10\.233\.9\.\d+\/$/);
    // Each answer names its replica's container host name; m2's gateway reaches both.
    const seen = new Set<string>();
    await until('gw m2 serving both replicas', 30_000, async () => {
      const r = await exec('curl', ['-fsS', '-m', '2', '-H', `Host: ${HOST}`, gw]);
      const from = /from (\S+)\s*$/.exec(r.stdout)?.[1];
      if (r.code === 0 && from) seen.add(from);
      return seen.size === 2 ? true : null;
    });
    expect([...seen].sort()).toEqual(['hello-0', 'hello-1']);
  }, 180_000);

  it('cut m2: m1 no longer reaches it, its processes keep running; heal m2: reachable again', async () => {
    expect((await fleet(['cut', 'm2'])).code).toBe(0);
    await until('m1 reports m2 unreachable', 30_000, async () => {
      const m2 = (await machines())?.find((m) => m.id === 'm2');
      return m2 && !m2.live.reachable ? true : null;
    });
    for (const pid of Object.values(started)) expect(alive(pid)).toBe(true);
    expect((await fleet(['heal', 'm2'])).code).toBe(0);
    await until('m1 reaches m2 again', 60_000, async () => {
      const m2 = (await machines())?.find((m) => m.id === 'm2');
      return m2?.live.reachable ? true : null;
    });
  }, 120_000);

  it('down removes every netns, link, process and directory it made; down again is fine', async () => {
    const down = await fleet(['down'], 180_000);
    expect(down.code, `${down.stdout}${down.stderr}`).toBe(0);
    const netns = (await exec('ip', ['netns', 'list'])).stdout;
    expect(netns).not.toMatch(/^pzf9-/m);
    const links = (await exec('ip', ['-o', 'link', 'show'])).stdout;
    expect(links).not.toMatch(/pzf9m/);
    for (const pid of Object.values(started)) expect(alive(pid)).toBe(false);
    expect(existsSync(STATE)).toBe(false);
    expect((await fleet(['down'])).code).toBe(0);
  }, 200_000);
});
