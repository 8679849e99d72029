/**
 * Volumes on real storage (issue 17): the same scenario on zfs-fuse (a file-backed pool) and on
 * btrfs (a loop device), each with a real ployzd, dockerd, nats and gateway.
 *
 * The service appends its version to /data/log when it starts, as the image's own user (uid
 * 10001: `owner` set) — so after a rollback the log is the target's snapshot plus the one line the
 * rolled-back candidate appended, and anything else (no revert, a half revert, a newer snapshot
 * destroyed) shows. A second volume without owner/mode is filled by copy-up from the image
 * (owned by uid 10001 there), and the same non-root process writes to it.
 *
 * Retention keeps the snapshots of the last `keep_snapshots` deploys.
 *
 * A rollback whose candidate never gets ready (its image tag now points at one whose server is
 * gone, so it exits), and one whose ployzd is killed -9 between the revert and the commit (then
 * started again: recovery), leave the pre-rollback data and version serving.
 */

import { createBtrfsLoop, createZfsPool } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { DaemonHarness, docker } from './daemon-harness.ts';
import { DeployHarness, type DeployLine } from './deploy-harness.ts';
import { deployIdOf } from './deploy-scenarios.ts';

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[volumes +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

const IMAGE = 'ployz-e2e-vol';

/** Two local images: `:good` has /seeded owned by uid 10001 (copy-up source); `:broken` has no server (exits). */
async function buildImages(dir: string): Promise<void> {
  const { mkdir, writeFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  for (const [tag, body] of [
    [
      'good',
      'FROM ployz/hello:latest\nUSER root\nRUN mkdir -p /seeded && echo seed > /seeded/seed && chown -R 10001:10001 /seeded && chmod 0700 /seeded\nUSER 10001\n',
    ],
    ['broken', 'FROM ployz/hello:latest\nUSER root\nRUN rm /app/server.mjs\nUSER 10001\n'],
  ] as const) {
    const ctx = join(dir, `img-${tag}`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), body);
    await docker('build', '-q', '-t', `${IMAGE}:${tag}`, ctx);
  }
}

function manifest(version: string, host: string, image = `${IMAGE}:${version}`): string {
  return `namespace = "vol"

[[volumes]]
name = "data"
owner = "10001:10001"
mode = "0750"
quota = "64MiB"

[[volumes]]
name = "seeded"
keep_snapshots = 3

[[services]]
name = "app"
image = "${image}"
entrypoint = ["sh", "-c", "echo \\"$HELLO_VERSION\\" >> /data/log && echo \\"$HELLO_VERSION\\" >> /seeded/log && exec node /app/server.mjs"]
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${version}" }
stop_grace = "1s"
mounts = [{ volume = "data", target = "/data" }, { volume = "seeded", target = "/seeded" }]

[[services.routes]]
http = { hostnames = ["${host}"], path = "/" }

[services.readiness]
http = { path = "/healthz" }
interval = "100ms"
retries = 50
start_timeout = "6s"
`;
}

async function running(d: DeployHarness): Promise<string> {
  const ids = Object.values(await d.workloads());
  for (const id of ids) {
    if ((await docker('inspect', '--format', '{{.State.Running}}', id)) === 'true') return id;
  }
  throw new Error(`no running workload among ${ids.join(', ')}`);
}

async function readLog(d: DeployHarness, file = '/data/log'): Promise<string[]> {
  return (await docker('exec', await running(d), 'cat', file)).split('\n').filter(Boolean);
}

function ok(r: { code: number; last: DeployLine | undefined }): void {
  expect(r.code, JSON.stringify(r.last)).toBe(0);
}

interface VolumeDetail {
  record: { driver: string; snapshots: { deploy_id: string; id: string }[]; owner: unknown };
  live: {
    exists: boolean;
    owner: { uid: number } | null;
    mode: number | null;
    snapshots: { id: string; label: string }[];
  } | null;
}

async function scenario(storage: string, driver: 'zfs' | 'btrfs'): Promise<void> {
  const h = await DaemonHarness.create();
  await using _h = h;
  await h.start();
  await buildImages(h.dir);
  // A storage that cannot be used is refused before anything is written: the next init works.
  const init = (spec: string) =>
    h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation, '--storage', spec);
  const bad = await init(`btrfs:${h.dir}/not-btrfs`);
  expect(bad.code, bad.stdout).toBe(2);
  expect(bad.json).toMatchObject({
    error: { code: 'STORAGE_INVALID', message: expect.stringContaining('not on a btrfs filesystem') },
  });
  const good = await init(storage);
  expect(good.code, good.stdout + good.stderr).toBe(0);
  const d = new DeployHarness(h);
  await d.engineReady();
  const ids: string[] = [];
  const deploy = async (version: string) => {
    await docker('tag', `${IMAGE}:good`, `${IMAGE}:${version}`);
    const r = await d.deploy(await d.write(`${version}.toml`, manifest(version, d.host)));
    ok(r);
    ids.push(deployIdOf(r.lines));
    await d.waitServing(version);
    return r;
  };

  mark(`${driver}: v1, v2, v3 each append their version`);
  const first = await deploy('one');
  expect(first.lines).toContainEqual(
    expect.objectContaining({ type: 'volume', action: 'snapshot', volume: 'data' }),
  );
  const second = await deploy('two');
  // One writer per single volume: the old instance stopped before the candidate started.
  expect(second.lines).toContainEqual(expect.objectContaining({ type: 'volume', action: 'writer_stopped' }));
  await deploy('three');
  expect(await readLog(d)).toEqual(['one', 'two', 'three']);
  // Copy-up: the image's /seeded (uid 10001, 0700, with its file) became the volume's content.
  expect(await readLog(d, '/seeded/seed')).toEqual(['seed']);
  expect(await readLog(d, '/seeded/log')).toEqual(['one', 'two', 'three']);

  mark(`${driver}: a write past the quota fails inside the container, and nothing else does`);
  const writer = await running(d);
  const over = await docker(
    'exec',
    writer,
    'sh',
    '-c',
    'dd if=/dev/zero of=/data/big bs=1M count=128 conv=fsync 2>&1; echo "exit=$?"',
  );
  expect(over).toMatch(/quota|No space left/i);
  expect(over).not.toContain('exit=0');
  await docker('exec', writer, 'rm', '-f', '/data/big');
  expect(await readLog(d)).toEqual(['one', 'two', 'three']);
  await d.waitServing('three');
  expect(await running(d)).toBe(writer);

  mark(`${driver}: a rollback whose candidate never gets ready changes nothing`);
  await docker('tag', `${IMAGE}:broken`, `${IMAGE}:one`);
  const failed = await d.rollback(ids[0] ?? '');
  expect(failed.code).not.toBe(0);
  expect(failed.last).toMatchObject({ type: 'error', error: { code: 'DEPLOY_READINESS_FAILED' } });
  expect(failed.lines).toContainEqual(expect.objectContaining({ type: 'volume', action: 'reverted' }));
  expect(failed.lines).toContainEqual(expect.objectContaining({ type: 'volume', action: 'restored' }));
  await d.waitServing('three');
  // The pre-rollback data exactly, plus the line v3 appended when it was started again.
  expect(await readLog(d)).toEqual(['one', 'two', 'three', 'three']);
  expect(await readLog(d, '/seeded/log')).toEqual(['one', 'two', 'three', 'three']);
  await docker('tag', `${IMAGE}:good`, `${IMAGE}:one`);

  mark(`${driver}: kill -9 of ployzd after the revert, before the commit: recovery restores`);
  await h.kill9();
  process.env.PLOYZ_TEST_PAUSE_AT_STEP = '5';
  try {
    await h.start();
  } finally {
    delete process.env.PLOYZ_TEST_PAUSE_AT_STEP;
  }
  await d.engineReady();
  let onPaused!: () => void;
  const paused = new Promise<void>((r) => {
    onPaused = r;
  });
  const interrupted = d.stream(['deploy', 'rollback', ids[0] ?? ''], (l) => {
    if (l.type === 'paused') onPaused();
  });
  void interrupted.then(() => onPaused());
  await paused;
  const cut = await h.kill9().then(() => interrupted);
  expect(cut.lines).toContainEqual(expect.objectContaining({ type: 'volume', action: 'reverted' }));
  expect(cut.lines).toContainEqual(expect.objectContaining({ type: 'paused', step: 5 }));
  await h.start();
  await d.engineReady();
  await d.waitServing('three');
  // The pre-rollback data again, plus the line v3 appended when recovery started it again.
  expect(await readLog(d)).toEqual(['one', 'two', 'three', 'three', 'three']);
  expect(h.logs.join('')).toContain('settled a volume an interrupted deploy had pending');

  mark(`${driver}: rollback to v1 reads v1's data`);
  const rb1 = await d.rollback(ids[0] ?? '');
  ok(rb1);
  await d.waitServing('one');
  expect(await readLog(d)).toEqual(['one', 'one']);
  expect(await readLog(d, '/seeded/log')).toEqual(['one', 'one']);

  mark(`${driver}: then rollback to v2: newer snapshots survived the first rollback`);
  const rb2 = await d.rollback(ids[1] ?? '');
  ok(rb2);
  await d.waitServing('two');
  expect(await readLog(d)).toEqual(['one', 'two', 'two']);
  const rollbackIds = [deployIdOf(rb1.lines), deployIdOf(rb2.lines)];

  mark(`${driver}: seed 004 — the prior manifest file again is a rollback, preview included`);
  const priorFile = await d.write('rollback.toml', manifest('one', d.host));
  const preview = await h.ctl('deploy', 'preview', '-f', priorFile);
  expect(preview.code, preview.stderr).toBe(3);
  const planned = JSON.parse(preview.stdout) as {
    rollback_of: string;
    volumes: { volume: string; action: string }[];
  };
  // The newest committed deploy with that manifest is the first rollback (v1 again, at its commit).
  expect(planned.rollback_of).toBe(deployIdOf(rb1.lines));
  expect(planned.volumes.map((v) => [v.volume, v.action])).toEqual([
    ['data', 'revert'],
    ['seeded', 'revert'],
  ]);
  // Exit 3 (changes pending): the human plan is on the failed command's stdout.
  const human = await h
    .human('deploy', 'preview', '-f', priorFile)
    .catch((error: { stdout?: string }) => error.stdout ?? '');
  expect(human).toContain(`Rollback of ${deployIdOf(rb1.lines)}`);
  expect(human).toMatch(/< data +revert/);
  const seed = await d.deploy(priorFile);
  ok(seed);
  await d.waitServing('one');
  expect(await readLog(d)).toEqual(['one', 'one', 'one']);
  const clean = await h.ctl('deploy', 'preview', '-f', priorFile);
  expect(clean.code, clean.stdout).toBe(0);
  rollbackIds.push(deployIdOf(seed.lines));

  mark(`${driver}: every committed deploy has its snapshot`);
  const shown = await h.ctl('volume', 'show', 'vol/data', '--json');
  expect(shown.code, shown.stderr).toBe(0);
  const detail = JSON.parse(shown.stdout) as VolumeDetail;
  expect(detail.record.driver).toBe(driver);
  expect(detail.record.snapshots.map((s) => s.deploy_id)).toEqual([...ids, ...rollbackIds]);
  expect(detail.live?.owner?.uid).toBe(10001);
  expect(detail.live?.mode).toBe(0o750);
  const onMachine = new Set(detail.live?.snapshots.map((s) => s.id));
  for (const s of detail.record.snapshots) expect(onMachine.has(s.id)).toBe(true);
  if (driver === 'btrfs') {
    // Undo-only snapshots go once a commit or an undo no longer needs them: what stays is the
    // commits' snapshots and at most the one pre-revert snapshot of the rollback killed -9
    // mid-way (its recovery knows only the pre snapshot it marked).
    const recorded = new Set(detail.record.snapshots.map((s) => s.id));
    const extra = (detail.live?.snapshots ?? []).filter((s) => !recorded.has(s.id)).map((s) => s.label);
    expect(extra.filter((l) => !l.startsWith('pre-revert-'))).toEqual([]);
    expect(extra.length).toBeLessThanOrEqual(1);
  }
  // Retention: seeded keeps the snapshots of its last 3 deploys (zfs keeps an older one a revert
  // cloned, and says so); the pruning was visible in the deploy's events.
  const seeded = JSON.parse((await h.ctl('volume', 'show', 'vol/seeded', '--json')).stdout) as VolumeDetail;
  const seededIds = seeded.record.snapshots.map((s) => s.deploy_id);
  expect(seededIds.slice(-3)).toEqual(rollbackIds);
  if (driver === 'btrfs') expect(seededIds).toHaveLength(3);
  expect(rb2.lines).toContainEqual(
    expect.objectContaining({ type: 'volume', action: 'pruned', volume: 'seeded' }),
  );
  const listed = await h.human('volume', 'ls', '-n', 'vol');
  expect(listed).toContain('vol/data');
  expect(listed).toContain('vol/seeded');
  const commits = JSON.parse((await h.ctl('deploy', 'show', deployIdOf(rb2.lines), '--json')).stdout) as {
    commits: { snapshots: unknown[]; reverted: { label: string }[]; rollback_of: string }[];
  };
  expect(commits.commits[0]?.reverted.map((r) => r.label)).toEqual([ids[1], ids[1]]);
  expect(commits.commits[0]?.snapshots).toHaveLength(2);

  mark(`${driver}: an owner change of an existing volume is refused before anything starts`);
  const changed = manifest('four', d.host, `${IMAGE}:good`).replace('owner = "10001:10001"', 'owner = "0:0"');
  const refused = await d.deploy(await d.write('owner.toml', changed));
  expect(refused.code).toBe(2);
  expect(refused.last).toMatchObject({ type: 'error', error: { code: 'STORAGE_INVALID' } });
  await d.waitServing('one');
  if (driver === 'btrfs') await failures(h, d, storage.slice('btrfs:'.length));
  mark(`${driver}: done`);
}

/** The workload of `service` in `namespace` that runs now. */
async function runningOf(h: DaemonHarness, namespace: string, service: string): Promise<string> {
  const id = await docker(
    'ps',
    '-q',
    '--filter',
    `label=ployz.installation=${h.installation}`,
    '--filter',
    `label=ployz.namespace=${namespace}`,
    '--filter',
    `label=ployz.service=${service}`,
  );
  if (id === '' || id.includes('\n'))
    throw new Error(`expected one running ${namespace}/${service}, got ${id}`);
  return id;
}

/** A phased manifest: `db` (with a volume) commits at a checkpoint, then `web` (no volume). */
function phased(version: string, webImage: string): string {
  return `namespace = "ckpt"

[[volumes]]
name = "data"
owner = "10001:10001"

[[services]]
name = "db"
image = "${IMAGE}:good"
entrypoint = ["sh", "-c", "echo \\"$HELLO_VERSION\\" >> /data/log && exec node /app/server.mjs"]
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${version}" }
stop_grace = "1s"
mounts = [{ volume = "data", target = "/data" }]
readiness = { http = { path = "/healthz" }, interval = "100ms", retries = 50, start_timeout = "6s" }

[[services]]
name = "web"
image = "${webImage}"
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${version}" }
stop_grace = "1s"
readiness = { http = { path = "/healthz" }, interval = "100ms", retries = 50, start_timeout = "3s" }

[[phases]]
id = "data"
services = ["db"]
commit_policy = "checkpoint"

[[phases]]
id = "app"
services = ["web"]
after = ["data"]
`;
}

/**
 * On btrfs (the commit path is the driver port's, the same for zfs): a snapshot that fails before
 * the commit commits nothing and leaves no snapshot of that deploy behind; a checkpoint commit
 * snapshots its phase's volumes, and they stay when a later phase fails (FailedAfterCheckpoint).
 */
async function failures(h: DaemonHarness, d: DeployHarness, root: string): Promise<void> {
  mark('btrfs: a snapshot that fails before the commit commits nothing');
  const { execFileSync } = await import('node:child_process');
  const before = JSON.parse((await h.ctl('volume', 'show', 'vol/data', '--json')).stdout) as VolumeDetail;
  // The second volume's snapshot cannot be created (its snapshot directory is immutable); the
  // first volume's is taken before it and must be removed again.
  const pinned = `${root}/.snapshots/vol/seeded`;
  execFileSync('chattr', ['+i', pinned]);
  let failed: Awaited<ReturnType<DeployHarness['deploy']>>;
  try {
    await docker('tag', `${IMAGE}:good`, `${IMAGE}:five`);
    failed = await d.deploy(await d.write('five.toml', manifest('five', d.host)));
  } finally {
    execFileSync('chattr', ['-i', pinned]);
  }
  expect(failed.code).not.toBe(0);
  expect(failed.last).toMatchObject({
    type: 'error',
    error: { code: 'STORAGE_FAILED', message: expect.stringContaining('failed before the commit') },
  });
  expect(failed.lines.filter((l) => l.type === 'commit')).toEqual([]);
  await d.waitServing('one');
  const failedId = deployIdOf(failed.lines);
  const after = JSON.parse((await h.ctl('volume', 'show', 'vol/data', '--json')).stdout) as VolumeDetail;
  expect(after.record.snapshots).toEqual(before.record.snapshots);
  expect(after.live?.snapshots.map((s) => s.id)).toEqual(before.live?.snapshots.map((s) => s.id));
  expect(after.live?.snapshots.some((s) => s.id.includes(failedId))).toBe(false);
  const shown = JSON.parse((await h.ctl('deploy', 'show', failedId, '--json')).stdout) as {
    status: { state: string };
    commits: unknown[];
  };
  expect(shown.commits).toEqual([]);
  expect(shown.status.state).not.toBe('committed');

  mark('btrfs: a checkpoint commit snapshots its phase; a later phase failing keeps it');
  const first = await d.deploy(await d.write('c1.toml', phased('c1', `${IMAGE}:good`)));
  ok(first);
  const c1 = deployIdOf(first.lines);
  const broken = await d.deploy(await d.write('c2.toml', phased('c2', `${IMAGE}:broken`)));
  expect(broken.code).not.toBe(0);
  expect(broken.lines).toContainEqual(
    expect.objectContaining({ type: 'error', state: 'FailedAfterCheckpoint' }),
  );
  const c2 = deployIdOf(broken.lines);
  const commits = JSON.parse((await h.ctl('deploy', 'show', c2, '--json')).stdout) as {
    commits: { kind: string; phase: string; snapshots: { volume: string; label: string }[] }[];
  };
  expect(commits.commits.map((c) => [c.kind, c.phase])).toEqual([['checkpoint', 'data']]);
  expect(commits.commits[0]?.snapshots.map((s) => [s.volume, s.label])).toEqual([['data', c2]]);
  const volume = JSON.parse((await h.ctl('volume', 'show', 'ckpt/data', '--json')).stdout) as VolumeDetail;
  expect(volume.record.snapshots.map((s) => s.deploy_id)).toEqual([c1, c2]);
  // The checkpointed db is live with c2's write; web still runs c1.
  const db = await runningOf(h, 'ckpt', 'db');
  expect((await docker('exec', db, 'cat', '/data/log')).split('\n').filter(Boolean)).toEqual(['c1', 'c2']);
  const web = await runningOf(h, 'ckpt', 'web');
  expect(await docker('inspect', '--format', '{{range .Config.Env}}{{println .}}{{end}}', web)).toContain(
    'HELLO_VERSION=c1',
  );
}

/**
 * `dir` storage keeps no snapshots: the preview says the data will not revert, the rollback is
 * refused with ROLLBACK_NO_SNAPSHOT and nothing changes, and `--without-volume-revert` restores
 * the services only (the data stays as it is, which the log shows).
 */
async function dirScenario(): Promise<void> {
  const h = await DaemonHarness.create();
  await using _h = h;
  await h.start();
  await buildImages(h.dir);
  const init = await h.ctl(
    'machine',
    'init',
    '--id',
    'm1',
    '--installation',
    h.installation,
    '--storage',
    `dir:${h.dir}/volumes`,
  );
  expect(init.code, init.stdout + init.stderr).toBe(0);
  const d = new DeployHarness(h);
  await d.engineReady();
  const ids: string[] = [];
  for (const version of ['one', 'two']) {
    await docker('tag', `${IMAGE}:good`, `${IMAGE}:${version}`);
    const r = await d.deploy(await d.write(`${version}.toml`, manifest(version, d.host)));
    ok(r);
    expect(r.lines.some((l) => l.type === 'volume' && l.action === 'snapshot')).toBe(false);
    ids.push(deployIdOf(r.lines));
    await d.waitServing(version);
  }
  mark('dir: the rollback is refused unless the data may stay as it is');
  const refused = await d.rollback(ids[0] ?? '');
  expect(refused.code).toBe(2);
  expect(refused.last).toMatchObject({
    type: 'error',
    error: { code: 'ROLLBACK_NO_SNAPSHOT', message: expect.stringContaining('--without-volume-revert') },
  });
  await d.waitServing('two');
  expect(await readLog(d)).toEqual(['one', 'two']);
  const back = await d.write('back.toml', manifest('one', d.host));
  // The prior manifest file is a rollback too (seed 004): its preview says the data cannot revert.
  const refusedPreview = await h.ctl('deploy', 'preview', '-f', back);
  expect(refusedPreview.code).toBe(2);
  expect(refusedPreview.json).toMatchObject({ error: { code: 'ROLLBACK_NO_SNAPSHOT' } });
  const preview = await h.ctl('deploy', 'preview', '-f', back, '--without-volume-revert');
  expect(preview.code, preview.stderr).toBe(3);
  const planned = JSON.parse(preview.stdout) as { volumes: { volume: string; action: string }[] };
  expect(planned.volumes.map((v) => [v.volume, v.action])).toEqual([
    ['data', 'not_reverted'],
    ['seeded', 'not_reverted'],
  ]);
  const services = await d.stream(['deploy', 'rollback', ids[0] ?? '', '--without-volume-revert']);
  ok(services);
  await d.waitServing('one');
  expect(await readLog(d)).toEqual(['one', 'two', 'one']);
  mark('dir: done');
}

describe('volumes on real storage (real ployzd, dockerd, nats, gateway)', () => {
  it('dir: no snapshots, so a rollback is refused unless --without-volume-revert', async () => {
    await dirScenario();
  });

  it('btrfs: snapshots at every commit, rollback reverts data and keeps history, failure restores', async () => {
    await using fs = await createBtrfsLoop({ sizeMiB: 512 });
    await scenario(`btrfs:${fs.path}/ployz`, 'btrfs');
  });

  it('zfs: snapshots at every commit, rollback reverts data and keeps history, failure restores', async () => {
    await using pool = await createZfsPool({ sizeMiB: 256 });
    await scenario(`zfs:${pool.pool}`, 'zfs');
  });
});
