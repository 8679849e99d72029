/**
 * ps, logs, exec and namespace rm on one machine (real ployzd, dockerd, nats, gateway; volumes on
 * btrfs on a loop device). The instances are local; a second pass restarts ployzd with
 * PLOYZ_TEST_OPS_VIA_RPC=1, so logs and exec take the path of an instance on another machine
 * (logs_read / exec_open / exec_io over NATS to the machine's ployzd) for real (and
 * fleet-images.test.ts runs them between two machines). `namespace rm --delete-volumes`: the
 * preview names the final snapshot, the volume goes, the final read-only snapshot holds its data
 * where the output says, and another namespace takes the hostname.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createBtrfsLoop } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { DaemonHarness } from './daemon-harness.ts';
import { DeployHarness, gatewayGet, helloManifest, jsonLines, type StreamEntry } from './deploy-harness.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const PLOYZCTL = join(ROOT, 'apps/ployzctl/bin/run.js');

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[ops.test +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

interface Ctl {
  code: number;
  stdout: string;
  stderr: string;
}

/** ployzctl with stdin text, without --json (exec passes bytes through). */

function twoReplicas(version: string, host: string, image?: string): string {
  return `${helloManifest({ version, host, ...(image ? { image } : {}) })}\n[services.placement]\nreplicas = 2\n`;
}

describe('ps, logs, exec, namespace rm (real ployzd, dockerd, nats, gateway)', () => {
  it('shows instances, merges logs across a deploy, passes exit codes, and removes a namespace as a deploy', async () => {
    await using fs = await createBtrfsLoop({ sizeMiB: 256 });
    const h = await DaemonHarness.create();
    await using _h = h;
    await h.start();
    const init = await h.ctl(
      ...['machine', 'init', '--id', 'm1', '--installation', h.installation],
      ...['--storage', `btrfs:${fs.path}/ployz`],
    );
    expect(init.code, init.stdout + init.stderr).toBe(0);
    const d = new DeployHarness(h);
    await d.engineReady();
    const v1 = await d.write('v1.toml', twoReplicas('v1', d.host));
    const first = await d.deploy(v1);
    expect(first.code, JSON.stringify(first.last)).toBe(0);
    await d.waitServing('v1');

    mark('---- ps');
    const ps = await h.ctl('ps', '-n', 'demo');
    expect(ps.code, ps.stderr).toBe(0);
    const view = ps.json as { services: { service: string; instances: Record<string, unknown>[] }[] };
    expect(view.services.map((s) => s.service)).toEqual(['hello']);
    const instances = view.services[0]?.instances ?? [];
    expect(instances).toHaveLength(2);
    for (const i of instances) {
      expect(i).toMatchObject({
        machine: 'm1',
        state: 'running',
        ready: true,
        unroutable: null,
        active: true,
      });
      expect(i.ports).toEqual({ http: 8080 });
    }
    const ids = instances.map((i) => String(i.instance)).sort();
    const human = await h.human('ps');
    expect(human).toMatch(/^SERVICE\s+INSTANCE\s+MACHINE\s+STATE\s+READY/);
    expect(human).toContain('demo/hello');

    mark('---- logs: both instances, each line named, merged by time');
    const logs = await h.run(['logs', 'demo/hello', '--json']);
    expect(logs.code, logs.stderr).toBe(0);
    const lines = jsonLines(logs.stdout).filter((e) => e.type === 'line');
    expect(new Set(lines.map((l) => l.instance))).toEqual(new Set(ids));
    expect(lines.every((l) => l.machine === 'm1' && l.text?.includes('listening'))).toBe(true);
    const times = lines.map((l) => l.at ?? '');
    expect(times).toEqual([...times].sort());
    const plain = await h.run(['logs', 'demo/hello', '--instance', ids[0] ?? '', '--tail', '1']);
    expect(plain.stdout.trim()).toMatch(new RegExp(`^${ids[0]}@m1 \\| .*listening`));

    mark('---- exec: stdout, stderr, exit code, stdin');
    const run = await h.run(['exec', 'demo/hello', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(run).toMatchObject({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const cat = await h.run(['exec', 'demo/hello', '-i', '--', 'cat'], 'through stdin\n');
    expect(cat).toMatchObject({ code: 0, stdout: 'through stdin\n' });
    const pinned = await h.run(['exec', 'demo/hello', '--instance', ids[1] ?? '', '--', 'hostname']);
    expect(pinned.code).toBe(0);

    // -t under a pseudo-terminal (util-linux `script`): the command gets a terminal of its own.
    const tty = await new Promise<Ctl>((resolve) => {
      const line = [
        process.execPath,
        '--conditions=ployz-source',
        PLOYZCTL,
        'exec',
        'demo/hello',
        '-t',
        '--socket',
        h.socket,
        '--',
        'tty',
      ]
        .map((a) => `'${a}'`)
        .join(' ');
      execFile('script', ['-qec', line, '/dev/null'], { timeout: 60_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
      );
    });
    expect(tty.code, tty.stdout + tty.stderr).toBe(0);
    expect(tty.stdout).toMatch(/\/dev\/pts\/\d+/);

    mark('---- errors with codes');
    expect(await h.run(['exec', 'demo/nope', '--', 'true'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('SERVICE_UNKNOWN'),
    });
    expect(await h.run(['logs', 'nons/hello'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('NAMESPACE_UNKNOWN'),
    });
    expect(
      await h.run(['exec', 'demo/hello', '--instance', 'demo-hello-9-zzzzzzzz', '--', 'true']),
    ).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('NO_RUNNING_INSTANCE'),
    });

    mark('---- logs --follow across a deploy: the new instances join');
    const follow = spawn(
      process.execPath,
      [
        '--conditions=ployz-source',
        PLOYZCTL,
        'logs',
        'demo/hello',
        '--follow',
        '--json',
        '--socket',
        h.socket,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let followed = '';
    follow.stdout.on('data', (b: Buffer) => {
      followed += b.toString();
    });
    const until = async (what: string, ok: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!ok()) {
        if (Date.now() > deadline) throw new Error(`logs --follow never showed ${what}: ${followed}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    await until('the v1 lines', () => followed.includes('\\"v1\\"'));
    const v2 = await d.write('v2.toml', twoReplicas('v2', d.host, 'ployz/hello:latest'));
    // Another env value: a new revision, so both slots get new instances.
    const second = await d.deploy(v2);
    expect(second.code, JSON.stringify(second.last)).toBe(0);
    await until('two joined instances writing v2', () => {
      const entries = jsonLines(followed);
      const joined = entries
        .filter((e) => e.type === 'instance' && e.event === 'joined')
        .map((e) => e.instance);
      const v2Lines = entries.filter((e) => e.type === 'line' && e.text?.includes('"v2"'));
      return joined.length === 2 && new Set(v2Lines.map((l) => l.instance)).size === 2;
    });
    await until(
      'the old instances leaving',
      () => jsonLines(followed).filter((e) => e.type === 'instance' && e.event === 'left').length === 2,
    );
    follow.kill('SIGINT');
    const followedLines = jsonLines(followed).filter((e) => e.type === 'line');
    const followTimes = followedLines.map((l) => l.at ?? '');
    expect(followTimes).toEqual([...followTimes].sort());

    mark('---- the remote path: ployzd restarted with PLOYZ_TEST_OPS_VIA_RPC=1');
    await h.term();
    process.env.PLOYZ_TEST_OPS_VIA_RPC = '1';
    try {
      await h.start();
      await d.engineReady();
      const remoteLogs = await h.run(['logs', 'demo/hello', '--json']);
      expect(remoteLogs.code, remoteLogs.stderr).toBe(0);
      const remoteLines = jsonLines(remoteLogs.stdout).filter((e) => e.type === 'line');
      expect(remoteLines.length).toBeGreaterThanOrEqual(2);
      expect(remoteLines.every((l) => l.text?.includes('"v2"'))).toBe(true);
      const remoteRun = await h.run([
        'exec',
        'demo/hello',
        '--',
        'sh',
        '-c',
        'echo far; echo away >&2; exit 3',
      ]);
      expect(remoteRun).toMatchObject({ code: 3, stdout: 'far\n', stderr: 'away\n' });
      const remoteCat = await h.run(['exec', 'demo/hello', '-i', '--', 'cat'], 'over rpc\n');
      expect(remoteCat).toMatchObject({ code: 0, stdout: 'over rpc\n' });
    } finally {
      delete process.env.PLOYZ_TEST_OPS_VIA_RPC;
    }

    mark('---- namespace ls, then rm: a deploy that frees the hostname and stays in history');
    const other = await d.write(
      'other.toml',
      helloManifest({ version: 'o1', host: d.host, namespace: 'other' }),
    );
    const refused = await d.deploy(other);
    expect(refused.last).toMatchObject({ type: 'error', error: { code: 'HOSTNAME_OWNED' } });
    const ls = await h.ctl('namespace', 'ls');
    expect(ls.json).toEqual([
      expect.objectContaining({
        namespace: 'demo',
        services: ['hello'],
        instances: 2,
        routable: 2,
        hostnames: [d.host],
      }),
    ]);
    const preview = await h.ctl('namespace', 'rm', 'demo', '--preview');
    expect(preview.code, preview.stderr).toBe(0);
    expect(preview.json).toMatchObject({ changed: true, services: [{ service: 'hello', action: 'remove' }] });
    expect(Object.keys(await d.workloads())).toHaveLength(2);
    const rm = await d.stream(['namespace', 'rm', 'demo']);
    const rmLast = rm.last as StreamEntry & { status?: { deploy_id: string; state: string } };
    expect(rm.code, JSON.stringify(rm.last)).toBe(0);
    expect(rm.lines.find((l) => l.type === 'plan')).toMatchObject({ plan: { summary: { remove: 1 } } });
    expect(rmLast).toMatchObject({ type: 'done', noop: false, status: { state: 'committed' } });
    expect(await d.workloads()).toEqual({});
    const gone = await gatewayGet({
      host: '127.0.0.1',
      port: h.gatewayPort,
      path: '/',
      hostHeader: d.host,
      timeoutMs: 5000,
    });
    expect(gone.status).toBe(404);
    const shown = await h.ctl('deploy', 'show', String(rmLast.status?.deploy_id));
    expect(shown.json).toMatchObject({
      commits: [{ kind: 'final', services: [], removed_services: ['hello'] }],
    });
    const history = await h.ctl('deploy', 'ls', '-n', 'demo');
    expect((history.json as { deploy_id: string }[]).map((s) => s.deploy_id)).toContain(
      rmLast.status?.deploy_id,
    );
    expect((await h.ctl('namespace', 'ls')).json).toEqual([]);

    mark('---- history keeps it: a rollback to the v2 deploy brings the namespace back, rm again');
    const secondId = String((second.last?.status as { deploy_id?: string } | undefined)?.deploy_id);
    const back = await d.rollback(secondId);
    expect(back.code, JSON.stringify(back.last)).toBe(0);
    await d.waitServing('v2');
    const again = await d.stream(['namespace', 'rm', 'demo']);
    expect(again.code, JSON.stringify(again.last)).toBe(0);
    expect(await h.run(['namespace', 'rm', 'demo'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('NAMESPACE_UNKNOWN'),
    });
    const taken = await d.deploy(other);
    expect(taken.code, JSON.stringify(taken.last)).toBe(0);

    mark(
      '---- namespace rm --delete-volumes: final snapshot, volume gone, the copy where it says, hostname free',
    );
    const volsHost = `vols-${h.id}.localhost`;
    const vols = await d.write(
      'vols.toml',
      helloManifest({ version: 'vol1', host: volsHost, namespace: 'vols' })
        .replace(
          'stop_grace = "2s"\n',
          `stop_grace = "1s"\nentrypoint = ["sh", "-c", "echo \\"$HELLO_VERSION\\" >> /data/log && exec node /app/server.mjs"]\nmounts = [{ volume = "data", target = "/data" }]\n`,
        )
        .replace('[[services]]', '[[volumes]]\nname = "data"\nowner = "10001:10001"\n\n[[services]]'),
    );
    const volsUp = await d.deploy(vols);
    expect(volsUp.code, JSON.stringify(volsUp.last)).toBe(0);
    const shownVolume = await h.ctl('volume', 'show', 'vols/data');
    expect(shownVolume.code, shownVolume.stdout).toBe(0);
    const dataset = (shownVolume.json as { record: { dataset: string; driver: string } }).record;
    expect(dataset.driver).toBe('btrfs');
    expect(existsSync(dataset.dataset)).toBe(true);
    const volsPreview = await h.ctl('namespace', 'rm', 'vols', '--delete-volumes', '--preview');
    expect(volsPreview.code, volsPreview.stderr).toBe(0);
    expect((volsPreview.json as { volumes: unknown[] }).volumes).toEqual([
      expect.objectContaining({
        volume: 'data',
        action: 'delete',
        detail: expect.stringMatching(/^final snapshot \S+-final, then deleted after the commit \(btrfs /),
      }),
    ]);
    // The preview changed nothing: the volume and its service are still there.
    expect((await h.ctl('volume', 'show', 'vols/data')).code).toBe(0);
    const volsRm = await d.stream(['namespace', 'rm', 'vols', '--delete-volumes']);
    expect(volsRm.code, JSON.stringify(volsRm.last)).toBe(0);
    const removalId = String((volsRm.last?.status as { deploy_id?: string } | undefined)?.deploy_id);
    const retired = volsRm.lines.find((l) => l.type === 'volume' && l.action === 'retired') as
      | (StreamEntry & { detail?: string })
      | undefined;
    const kept = new RegExp(`^deleted; final snapshot ${removalId}-final kept at (\\S+):`).exec(
      retired?.detail ?? '',
    )?.[1];
    expect(kept, JSON.stringify(volsRm.lines)).toBe(`${fs.path}/ployz/.retired/vols/data-${removalId}-final`);
    // The live subvolume is gone; the final copy is a read-only snapshot holding what was written.
    expect(existsSync(dataset.dataset)).toBe(false);
    expect((await readFile(join(kept ?? '', 'log'), 'utf8')).trim()).toBe('vol1');
    const ro = await new Promise<string>((resolve, reject) =>
      execFile('btrfs', ['property', 'get', '-ts', kept ?? '', 'ro'], (e, out) =>
        e ? reject(e) : resolve(out),
      ),
    );
    expect(ro.trim()).toBe('ro=true');
    expect((await h.ctl('volume', 'show', 'vols/data')).code).toBe(2);
    expect((await h.ctl('volume', 'ls', '-n', 'vols')).json).toEqual([]);
    expect((await h.ctl('deploy', 'show', removalId)).json).toMatchObject({
      commits: [{ kind: 'final', removed_services: ['hello'] }],
    });
    const taker = await d.deploy(
      await d.write('taker.toml', helloManifest({ version: 't1', host: volsHost, namespace: 'taker' })),
    );
    expect(taker.code, JSON.stringify(taker.last)).toBe(0);
    const served = await gatewayGet({
      host: '127.0.0.1',
      port: h.gatewayPort,
      path: '/',
      hostHeader: volsHost,
      timeoutMs: 5000,
    });
    expect(served.body).toContain('(version t1)');
  }, 300_000);
});
