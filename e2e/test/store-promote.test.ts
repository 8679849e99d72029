/**
 * Issue 19 on three netns machines (real dockerd, wireguard-go, nats-server and ployzd on each):
 * `ployzctl machine storage promote --replicas 3 m1 m2 m3` plans the move of the one standalone
 * store (m1's ployz-nats) — each asset with messages and bytes, every member probed over the mesh
 * (round trip, data-plane health), regions — and changes nothing; R=2 is REPLICAS_INVALID; a cut
 * member is STORE_PROMOTE_UNHEALTHY; a coordinator killed mid-promotion leaves the old store
 * serving; `--yes` promotes under traffic (every machine switched, history, rollback and routing
 * intact); at R3 a machine joins as a leaf of the members, one storage machine cut still commits,
 * two cut is STORE_NO_QUORUM while gateways serve, healed commits again; a Jepsen-style check of
 * one lease and commit appends from all three members while the leader's machine is cut and healed.
 * Needs root and the images (bash scripts/images.sh).
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  LocalApiClient,
  type StatusView,
  type StoragePromotePlanView,
  type StoragePromoteResult,
} from '@ployz/protocol';
import { type AppendOutcome, commitViolations, type LeaseHold, leaseViolations } from '@ployz/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helloManifest } from './deploy-harness.ts';
import {
  answerFrom,
  askGateway,
  bootFleet,
  cut,
  errorCode,
  type Fleet,
  fleetLogs,
  heal,
  type Machine,
  records,
  requestLoop,
  startMachine,
  startPloyzd,
  until,
} from './fleet-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('store-promote.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('store-promote.test.ts SKIPPED: not root');

/** The issue asks for at least 50 deploys in history before the promotion. */
const DEPLOYS = Number(process.env.PLOYZ_E2E_PROMOTE_DEPLOYS ?? 50);
const HOST = 'promote.localhost';

/** One deploy of hello `version` through `m`'s local API: its final state. */
async function deployVia(m: Machine, version: string): Promise<string | null> {
  const client = new LocalApiClient({ socketPath: m.h.socket });
  let state: string | null = null;
  for await (const item of client.stream('deployApply', {
    manifest: helloManifest({ version, host: HOST, namespace: 'promote' }),
    filename: 'promote.toml',
    format: null,
    actor: 'e2e',
    start_concurrency: null,
    without_volume_revert: false,
  })) {
    if (item.kind === 'result') state = item.result.status?.state ?? null;
  }
  return state;
}

/** The error code of a `deploy --json` run: its last NDJSON line, `{ type: 'error', error }`. */
function deployError(r: { stdout: string }): string | undefined {
  const last = r.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return (JSON.parse(last) as { error?: { code?: string } }).error?.code;
  } catch {
    return undefined;
  }
}

/** hello `version` written to a manifest file in `m`'s harness directory. */
async function manifestFile(m: Machine, version: string, replicas = 1): Promise<string> {
  const file = join(m.h.dir, 'promote.toml');
  const manifest = helloManifest({ version, host: HOST, namespace: 'promote' });
  await writeFile(
    file,
    replicas === 1
      ? manifest
      : manifest.replace('name = "hello"\n', `name = "hello"\nplacement = { replicas = ${replicas} }\n`),
  );
  return file;
}

/** Until `m`'s gateway answers hello's `version`. */
async function servesVersion(m: Machine, version: string, timeoutMs = 30_000): Promise<void> {
  await until(`${m.name} serving ${version}`, timeoutMs, async () => {
    const r = await askGateway(m, HOST, 3000);
    return answerFrom(r.body)?.startsWith(`${version}@`) ? true : null;
  });
}

describe.skipIf(!isRoot)('store promotion plan on a 3-machine fleet (issue 19)', () => {
  let fleet: Fleet;
  let m1: Machine;
  let m2: Machine;
  let m3: Machine;
  /** Joins after the promotion (a leaf of the members, not one). */
  let m4: Machine;

  beforeAll(async () => {
    fleet = await bootFleet('promote', ['m1', 'm2', 'm3']);
    [m1, m2, m3] = fleet.machines as [Machine, Machine, Machine];
    // History for the promotion to carry: DEPLOYS deploys through the local API (a ployzctl
    // process each would double the time).
    const started = Date.now();
    for (let i = 0; i < DEPLOYS; i++) {
      const state = await deployVia(m1, `v${i}`);
      expect(state, fleetLogs(fleet.machines)).toBe('committed');
    }
    console.log(`[store-promote] ${DEPLOYS} deploys in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }, 600_000);
  afterAll(async () => {
    await fleet?.destroy();
  }, 120_000);

  it('plans 1 → 3: every asset, the members probed over the mesh, nothing changed', async () => {
    const r = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm3');
    expect(r.code, `${r.stdout}${r.stderr}`).toBe(0);
    const plan = r.json as StoragePromotePlanView;
    expect(plan.current_storage).toBe('m1');
    expect(plan.refusal).toBeNull();
    expect(plan.members.map((m) => [m.machine, m.reachable, m.healthy, m.holds_store_now])).toEqual([
      ['m1', true, true, true],
      ['m2', true, true, false],
      ['m3', true, true, false],
    ]);
    for (const m of plan.members) expect(m.rtt_ms).toBeLessThan(plan.rtt_bound_ms);
    const commits = plan.assets.find((a) => a.asset.startsWith('cp_deploy_commits_'));
    expect(commits?.messages).toBeGreaterThanOrEqual(DEPLOYS);
    expect(plan.assets.length).toBeGreaterThanOrEqual(10);
    expect(plan.messages).toBeGreaterThan(DEPLOYS);
    expect(plan.promotion).toBeNull();
    // The plan changed nothing: still R1 on m1, seen from every machine.
    for (const m of [m1, m2, m3]) {
      const s = (await m.h.ctl('status')).json as StatusView;
      expect(s.store?.error ?? null).toBeNull();
      expect(s.store?.replicas).toBe(1);
      expect(s.store?.leader).toBe('m1');
      expect(s.store?.assets.every((a) => a.lagging.length === 0 && a.current.join() === 'm1')).toBe(true);
    }
  }, 120_000);

  it('never 2 replicas; only 1 → 3; three distinct known machines', async () => {
    const two = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '2', 'm1', 'm2');
    expect(two.code).toBe(2);
    expect(errorCode(two)).toBe('REPLICAS_INVALID');
    const five = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '5', 'm1', 'm2', 'm3');
    expect(errorCode(five)).toBe('STORE_PROMOTE_UNSUPPORTED');
    const dup = await m2.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm2');
    expect(errorCode(dup)).toBe('STORE_PROMOTE_MACHINES_INVALID');
  }, 60_000);

  it('a cut member: the plan names it and refuses (STORE_PROMOTE_UNHEALTHY); healed: applicable again', async () => {
    await cut(m3);
    try {
      const r = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm3');
      expect(r.code).toBe(1);
      expect(errorCode(r)).toBe('STORE_PROMOTE_UNHEALTHY');
      expect(JSON.stringify(r.json)).toContain('m3');
    } finally {
      await heal(m3);
    }
    await until('the plan is applicable once m3 is back', 90_000, async () => {
      const r = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm3');
      return r.code === 0 ? true : null;
    });
  }, 180_000);

  it('machine rm of the storage machine is refused, even with --force (MACHINE_IS_STORAGE)', async () => {
    const r = await m2.h.ctl('machine', 'rm', 'm1', '--force');
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({ error: { code: 'MACHINE_IS_STORAGE', details: { storage: ['m1'] } } });
    expect((await records(m2)).find((x) => x.id === 'm1')?.lifecycle).toBe('active');
  }, 60_000);

  it('kill -9 of the coordinator mid-promotion: the installation stays on the old store and keeps serving', async () => {
    const member = m2.dockerd.docker.getContainer(`${m2.h.prefix}nats-store`);
    const promoting = m1.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm3', '--yes');
    // Killed once m2's member exists: the coordinator is then starting members, before the copy.
    let ended: { code: number; stdout: string; stderr: string } | null = null;
    void promoting.then((r) => {
      ended = r;
    });
    const deadline = Date.now() + 150_000;
    while (
      !(await member.inspect().then(
        () => true,
        () => false,
      ))
    ) {
      const done = ended as { code: number; stdout: string; stderr: string } | null;
      if (done !== null)
        throw new Error(
          `the promotion ended before m2's member appeared (exit ${done.code}): ${done.stdout}${done.stderr}\n${fleetLogs(fleet.machines)}`,
        );
      if (Date.now() > deadline)
        throw new Error(`m2's store member never appeared\n${fleetLogs(fleet.machines)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const exited = new Promise((r) => m1.ployzd?.once('exit', r));
    m1.ployzd?.kill('SIGKILL');
    await exited;
    const killed = await promoting;
    expect(killed.code).not.toBe(0);
    // The record on the old store says the promotion did not pass its commit point.
    const seen = ((await m2.h.ctl('status')).json as StatusView).store;
    expect(seen?.replicas).toBe(1);
    expect(['preparing', 'migrating', 'verified']).toContain(seen?.promotion?.phase);
    for (const m of [m1, m2, m3]) await servesVersion(m, `v${DEPLOYS - 1}`);
    await startPloyzd(m1, true);
    // Deploys are refused with their own code while the dead coordinator's lease lasts, then work.
    const expires = Date.parse(seen?.promotion?.expires_at ?? '');
    const first = await m2.h.ctl('deploy', '-f', await manifestFile(m2, 'after-kill'));
    if (Date.now() < expires - 2000)
      expect(
        deployError(first),
        `${first.code} ${first.stdout}${first.stderr}\n${fleetLogs(fleet.machines)}`,
      ).toBe('STORE_PROMOTING');
    await until('a deploy commits on the old store once the lease expired', 90_000, async () => {
      const r = await m2.h.ctl('deploy', '-f', await manifestFile(m2, 'after-kill'));
      return r.code === 0 ? true : null;
    });
    expect(((await m1.h.ctl('status')).json as StatusView).store?.replicas).toBe(1);
  }, 330_000);

  it('promotes 1 → 3 under traffic: every machine switched, history, show, rollback and routing intact', async () => {
    const history = async (m: Machine) =>
      ((await m.h.ctl('deploy', 'ls', '--limit', String(DEPLOYS + 10))).json as { deploy_id: string }[]).map(
        (d) => d.deploy_id,
      );
    const before = await history(m1);
    // The history of beforeAll, and the deploy after the killed promotion.
    expect(before.length).toBe(DEPLOYS + 1);
    const loops = [m1, m2, m3].map((m) => requestLoop(m, HOST, 2));
    const r = await m1.h.ctl('machine', 'storage', 'promote', '--replicas', '3', 'm1', 'm2', 'm3', '--yes');
    const answers = await Promise.all(loops.map((l) => l.stop()));
    expect(r.code, `${r.stdout}${r.stderr}\n${fleetLogs(fleet.machines)}`).toBe(0);
    const result = r.json as StoragePromoteResult;
    expect(result.members).toEqual(['m1', 'm2', 'm3']);
    // The others first, the coordinator (the old storage machine) last.
    expect(result.switched).toEqual(['m2', 'm3', 'm1']);
    expect(result.pending).toEqual([]);
    const commits = result.verified.find((a) => a.asset.startsWith('cp_deploy_commits_'));
    expect(commits?.messages).toBeGreaterThanOrEqual(DEPLOYS);
    // Gateways kept serving through every machine's switch-over.
    for (const [i, a] of answers.entries()) {
      const failed = a.filter((x) => !x.ok);
      console.log(
        `[store-promote] m${i + 1}: ${a.length} requests during the promotion, ${failed.length} failed`,
      );
      expect(a.length).toBeGreaterThan(0);
      expect(failed.slice(0, 3), `m${i + 1}`).toEqual([]);
    }
    // R3 seen from every machine, the leader one of the members.
    for (const m of [m1, m2, m3]) {
      const st = await until(`${m.name} sees the store at R3`, 30_000, async () => {
        const s = ((await m.h.ctl('status')).json as StatusView).store;
        return s && s.error === null && s.replicas === 3 ? s : null;
      });
      expect(st.leader ?? '', m.name).toMatch(/^m[123]/);
      expect(st.promotion?.phase, m.name).toBe('done');
    }
    // History and old ids intact, read from another machine.
    expect(await history(m2)).toEqual(before);
    const oldest = before[before.length - 1] ?? '';
    const shown = await m3.h.ctl('deploy', 'show', oldest);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.stringify(shown.json)).toContain(oldest);
    // A new deploy commits at R3 and every gateway serves it; a rollback to an old id too.
    const next = await m2.h.ctl('deploy', '-f', await manifestFile(m2, 'after'));
    expect(next.code, `${next.stdout}${next.stderr}\n${fleetLogs(fleet.machines)}`).toBe(0);
    for (const m of [m1, m2, m3]) await servesVersion(m, 'after');
    const back = await m3.h.ctl('deploy', 'rollback', oldest);
    expect(back.code, `${back.stdout}${back.stderr}`).toBe(0);
    for (const m of [m1, m2, m3]) await servesVersion(m, 'v0');
    expect((await history(m1)).length).toBe(DEPLOYS + 3);
    console.log(
      `[store-promote] promotion ${(result.duration_ms / 1000).toFixed(1)} s; ${before.length} deploys carried`,
    );
    // A second promotion is refused: the store is at 3.
    const again = await m1.h.ctl(
      'machine',
      'storage',
      'promote',
      '--replicas',
      '3',
      'm1',
      'm2',
      'm3',
      '--yes',
    );
    expect(errorCode(again)).toBe('STORE_PROMOTE_UNSUPPORTED');
  }, 300_000);

  it('at R3: machine rm of a member is refused; a machine joining later is a leaf of the members', async () => {
    const r = await m1.h.ctl('machine', 'rm', 'm3', '--force');
    expect(r.json).toMatchObject({
      error: { code: 'MACHINE_IS_STORAGE', details: { storage: ['m1', 'm2', 'm3'] } },
    });
    m4 = await startMachine(fleet.lan, 'm4');
    // One of the fleet's machines from now on: destroyed with it.
    (fleet.machines as Machine[]).push(m4);
    await startPloyzd(m4, false);
    const invite = (await m1.h.ctl('machine', 'invite', '--ttl', '10m')).json as { token: string };
    const joined = await m4.h.ctl('machine', 'join', invite.token, '--id', 'm4');
    expect(joined.code, `${joined.stdout}${joined.stderr}\n${fleetLogs(fleet.machines)}`).toBe(0);
    const st = await until('m4 reads the store at R3', 90_000, async () => {
      const s = ((await m4.h.ctl('status')).json as StatusView | null)?.store;
      return s && s.error === null && s.replicas === 3 ? s : null;
    });
    expect(st.promotion?.phase).toBe('done');
    expect((await records(m4)).map((x) => x.id).sort()).toEqual(['m1', 'm2', 'm3', 'm4']);
  }, 240_000);
  it('at R3: one storage machine cut mid-deploy, it commits; two cut, STORE_NO_QUORUM while gateways serve and status names them; healed, commits', async () => {
    // The store members are m1, m2, m3; m4 (joined above) is a leaf only.
    expect(((await m1.h.ctl('status')).json as StatusView).store?.replicas).toBe(3);
    // Cut mid-deploy: once the deploy holds its lease, has written its status and starts its
    // candidate, the storage machine running none of it (m3, or m2 when the slot is on m3) is
    // cut; the same deploy goes on to its commits.
    const client = new LocalApiClient({ socketPath: m1.h.socket });
    let first: Machine | null = null;
    let state: string | null = null;
    let error: unknown = null;
    const events: string[] = [];
    try {
      for await (const item of client.stream('deployApply', {
        manifest: helloManifest({ version: 'cut-one', host: HOST, namespace: 'promote' }),
        filename: 'promote.toml',
        format: null,
        actor: 'e2e',
        start_concurrency: null,
        without_volume_revert: false,
      })) {
        if (item.kind === 'result') {
          state = item.result.status?.state ?? null;
          error = item.result.status?.error ?? null;
          continue;
        }
        const e = item.progress;
        events.push(
          e.type === 'step'
            ? `${e.step}:${e.state}`
            : e.type === 'instance'
              ? `${e.action}@${e.machine}`
              : e.type,
        );
        if (first === null && e.type === 'instance' && e.action === 'starting') {
          first = e.machine === 'm3' ? m2 : m3;
          await cut(first);
          events.push(`CUT ${first.name}`);
        }
      }
    } catch (err) {
      // A failed deploy ends its stream with the error.
      error = err instanceof Error ? err.message : String(err);
    }
    try {
      expect(first, events.join(' ')).not.toBeNull();
      expect(state, `${events.join(' ')} ${JSON.stringify(error)}\n${fleetLogs(fleet.machines)}`).toBe(
        'committed',
      );
      console.log(`[store-promote] ${first?.name} cut mid-deploy, the deploy committed: ${events.join(' ')}`);
      // The gateway's routing feed may first have to leave a consumer placed on the cut member.
      const routed = Date.now();
      await servesVersion(m1, 'cut-one', 90_000);
      console.log(
        `[store-promote] one member cut: m1's gateway served the new version ${Date.now() - routed} ms after the commit`,
      );
      const second = first === m3 ? m2 : m3;
      await cut(second);
      try {
        // Until the survivor's election timeout its member may still forward to a lost leader
        // (a read times out: STORE_UNAVAILABLE); from then on every deploy is STORE_NO_QUORUM.
        const started = Date.now();
        const seen: string[] = [];
        const refused = await until('a deploy refused with STORE_NO_QUORUM', 30_000, async () => {
          const r = await m1.h.ctl('deploy', '-f', await manifestFile(m1, 'cut-two', 4));
          seen.push(r.code === 0 ? 'COMMITTED' : (deployError(r) ?? `exit ${r.code}`));
          return deployError(r) === 'STORE_NO_QUORUM' ? r : null;
        }).catch((err: unknown) => {
          throw new Error(`${String(err)}: ${seen.join(', ')}\n${fleetLogs(fleet.machines)}`);
        });
        console.log(
          `[store-promote] two of three members cut: STORE_NO_QUORUM ${Date.now() - started} ms after the cut (${seen.join(', ')})`,
        );
        expect(refused.code).not.toBe(0);
        expect(seen.filter((x) => x !== 'STORE_NO_QUORUM' && x !== 'STORE_UNAVAILABLE')).toEqual([]);
        // status names the missing peers though the store cannot be read.
        const lost = ((await m1.h.ctl('status')).json as StatusView).store;
        expect(lost?.error, JSON.stringify(lost)).not.toBeNull();
        expect(
          lost?.peers
            .filter((p) => !p.reachable)
            .map((p) => p.machine)
            .sort(),
        ).toEqual(['m2', 'm3']);
        expect(await m1.h.human('status')).toContain('missing peers: m2, m3');
        // Nothing half-written: the refused version is served nowhere, the committed one everywhere left.
        const loops = [m1, m4].map((m) => requestLoop(m, HOST, 2));
        await new Promise((r) => setTimeout(r, 5000));
        const answers = await Promise.all(loops.map((l) => l.stop()));
        for (const [i, a] of answers.entries()) {
          const name = i === 0 ? 'm1' : 'm4';
          const ok = a.filter((x) => x.ok);
          console.log(
            `[store-promote] ${name} without quorum: ${a.length} requests, ${a.length - ok.length} failed`,
          );
          expect(ok.length, `${name}: ${JSON.stringify(a.slice(0, 3))}`).toBeGreaterThan(0);
          expect(
            ok.filter((x) => x.from.startsWith('cut-two@')),
            name,
          ).toEqual([]);
        }
      } finally {
        await heal(second);
      }
    } finally {
      if (first) await heal(first);
    }
    const healed = await until('a deploy commits once healed', 120_000, async () => {
      const r = await m1.h.ctl('deploy', '-f', await manifestFile(m1, 'healed', 4));
      return r.code === 0 ? r : null;
    });
    expect(healed.stdout).toContain('committed');
    for (const m of [m1, m2, m3, m4]) await servesVersion(m, 'healed');
  }, 480_000);

  // Not in the default run (issue 19 open): on nats-server 2.9.10 acknowledged commits are lost
  // after the commit leader's machine is cut and healed, and a replica then stays behind for
  // > 90 s after the writers stop (ADR 0003). Run it with PLOYZ_E2E_JEPSEN=1.
  it.skipIf(process.env.PLOYZ_E2E_JEPSEN !== '1')(
    'Jepsen-style: clients on all three members take one lease and append commits while the leader machine is cut and healed',
    async () => {
      const members = [m1, m2, m3];
      const targets = new Map<Machine, JepsenTarget>();
      for (const m of members) targets.set(m, await jepsenTarget(m));
      const clients = members.map((m) => jepsenClient(m, targets.get(m), m.name, 180_000));
      await Promise.all(clients.map((c) => c.ready));
      const cuts: string[] = [];
      const survived: string[] = [];
      /** Acknowledged commits not found (nats-server 2.9.10 loses some: ADR 0003). */
      const durability: string[] = [];
      const timeline: { cut: string; asset: string; at: number; healed?: number }[] = [];
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        // Alternately the machine leading the lease bucket and the one leading the commit stream.
        const asset = cycle % 2 === 0 ? /locks/ : /commits/;
        const leader = await until('a leader to cut', 60_000, async () => {
          for (const m of members) {
            const st = ((await m.h.ctl('status')).json as StatusView | null)?.store;
            const name = st?.assets.find((a) => asset.test(a.asset))?.leader;
            const found = members.find((x) => name === `${x.name}-store`);
            if (found) return found;
          }
          return null;
        });
        cuts.push(`${leader.name}(${asset.source})`);
        timeline.push({ cut: leader.name, asset: asset.source, at: Date.now() + 2000 });
        await new Promise((r) => setTimeout(r, 2000));
        const cutAt = Date.now();
        await cut(leader);
        if (asset.source === 'commits') {
          // With the commit stream leader's machine still cut, the other two hold every commit
          // acknowledged before the cut: read back through a machine that is not cut.
          const reader = members.find((m) => m !== leader) ?? m1;
          const ackedBefore = clients
            .flatMap((c) => c.events())
            .filter((e) => e.op === 'append' && e.ok && Number(e.acked) < cutAt)
            .map((e) => String(e.id));
          // Read until every one is there (a new leader still applying its log reports an older
          // last sequence); one never found while the leader stays cut is a lost commit.
          let missing: string[] = [];
          let atSeq = new Map<number, string>();
          let lastRead: JepsenEvent | null = null;
          let reads = 0;
          const readAt = Date.now();
          const found = await until(
            `the commits read on ${reader.name} with ${leader.name} cut`,
            20_000,
            async () => {
              const r = jepsenClient(reader, targets.get(reader), 'reader', 0);
              const lines = await r.exit;
              if (r.code() !== 0) return null;
              reads++;
              const stored = new Set(lines.filter((l) => l.op === 'stored').map((l) => String(l.id)));
              missing = ackedBefore.filter((id) => !stored.has(id));
              atSeq = new Map(
                lines
                  .filter((l) => l.op === 'stored' || l.op === 'other')
                  .map((l) => [Number(l.seq), `${l.op}:${l.id}`]),
              );
              lastRead = lines.at(-1) ?? null;
              return missing.length === 0 ? true : null;
            },
          ).catch(() => false);
          if (found) {
            survived.push(
              `${ackedBefore.length} acked before ${leader.name} (commit leader) was cut, all read on ${reader.name} ${Date.now() - readAt} ms after (${reads} reads)`,
            );
          } else {
            const at = clients
              .flatMap((c) => c.events())
              .filter((e) => e.op === 'append' && missing.includes(String(e.id)));
            durability.push(
              `${missing.length} of ${ackedBefore.length} acknowledged before the cut of ${leader.name} not on ${reader.name} after ${reads} reads: ${JSON.stringify(at.slice(0, 5).map((e) => ({ id: e.id, seq: e.seq, acked_ms_before_cut: cutAt - Number(e.acked), now_at_seq: atSeq.get(Number(e.seq)) ?? null })))}; reader ${JSON.stringify(lastRead)}; cuts ${JSON.stringify(timeline)}`,
            );
          }
        }
        await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (Date.now() - cutAt))));
        await heal(leader);
        const last = timeline.at(-1);
        if (last) last.healed = Date.now();
        // Caught up with no manual step before the next cut: every asset current on all three.
        let seen = '';
        await until(`every asset current after healing ${leader.name}`, 90_000, async () => {
          const st = ((await m1.h.ctl('status')).json as StatusView | null)?.store;
          seen = JSON.stringify(
            st && {
              error: st.error,
              behind: st.assets.filter((a) => a.current.length !== 3),
              peers: st.peers,
            },
          );
          // Under the clients' steady writes a follower replicates a little behind (lag ~100,
          // heard within the last second) without ever reporting `current`: that is caught up
          // enough to cut the next leader. Strictly current is checked once the clients stop.
          return st &&
            st.error === null &&
            st.assets.length > 0 &&
            st.assets.every(
              (a) => a.current.length === 3 || a.lagging.every((l) => l.active_ms < 2000 && l.lag < 1000),
            )
            ? st
            : null;
        }).catch((err: unknown) => {
          throw new Error(`${String(err)}; last status: ${seen}\n${fleetLogs(fleet.machines)}`);
        });
      }
      await new Promise((r) => setTimeout(r, 2000));
      const histories = await Promise.all(clients.map((c) => c.stop()));
      // With the writers stopped, every replica catches up: current on all three.
      await until('every asset current on all three members', 90_000, async () => {
        const st = ((await m1.h.ctl('status')).json as StatusView | null)?.store;
        return st &&
          st.error === null &&
          st.assets.length > 0 &&
          st.assets.every((a) => a.current.length === 3)
          ? st
          : null;
      });
      const events = histories.flat();
      const stored = await until('the stored commits read back', 60_000, async () => {
        const r = jepsenClient(m1, targets.get(m1), 'reader', 0);
        const lines = await r.exit;
        return r.code() === 0 ? lines.filter((l) => l.op === 'stored') : null;
      });
      const releases = new Map(events.filter((e) => e.op === 'release').map((e) => [e.nonce, e]));
      const holds: LeaseHold[] = events
        .filter((e) => e.op === 'acquire' && e.ok)
        .map((e) => ({
          client: e.client,
          nonce: String(e.nonce),
          revision: Number(e.revision),
          from: Number(e.acked),
          until: Math.min(
            Number(releases.get(e.nonce)?.invoked ?? Number.POSITIVE_INFINITY),
            Number(e.expires),
          ),
        }));
      const appends: AppendOutcome[] = events
        .filter((e) => e.op === 'append')
        .map((e) => ({ id: String(e.id), client: e.client, seq: e.ok ? Number(e.seq) : null }));
      const commits = commitViolations(
        appends,
        stored.map((l) => ({ id: String(l.id), seq: Number(l.seq) })),
      );
      const count = (op: string, ok: boolean) => events.filter((e) => e.op === op && e.ok === ok).length;
      const codes = [...new Set(events.filter((e) => e.ok === false).map((e) => `${e.op}:${e.code}`))].sort();
      console.log(
        `[store-promote] jepsen: cuts ${cuts.join(', ')}; appends ${count('append', true)} acked, ${count('append', false)} failed ` +
          `(${commits.unknownStored} of those stored anyway); acquires ${count('acquire', true)} won, ${count('acquire', false)} refused; ` +
          `releases ${count('release', true)} ok, ${count('release', false)} lost; ${survived.join('; ')}; per client ${members
            .map((m) => `${m.name} ${holds.filter((h) => h.client === m.name).length} holds`)
            .join(', ')}; failure codes ${codes.join(' ')}`,
      );
      // Strict: never two holders of the lease, no commit id stored twice, nothing nobody appended.
      const lost = commits.violations.filter((v) => v.kind === 'lost_commit' || v.kind === 'moved_commit');
      expect([...leaseViolations(holds), ...commits.violations.filter((v) => !lost.includes(v))]).toEqual([]);
      // Acknowledged commits lost: nats-server 2.9.10 loses some when the commit leader's machine
      // is cut and healed (ADR 0003 — a server defect ployz cannot mend); counted and printed
      // here, a failure with PLOYZ_E2E_STRICT_DURABILITY=1. Issue 19 stays open on it.
      console.log(
        `[store-promote] jepsen durability: ${lost.length} of ${commits.acknowledged} acknowledged commits lost after the heals${
          lost.length > 0
            ? ` (${lost
                .slice(0, 3)
                .map((v) => v.detail)
                .join('; ')})`
            : ''
        }; during the cuts: ${durability.join('; ') || 'none missing'}`,
      );
      if (STRICT_DURABILITY) expect([...lost.map((v) => v.detail), ...durability]).toEqual([]);
      // The check must have had something to check: holds and acknowledged commits from every
      // client, and the cuts really did refuse operations.
      for (const m of members) {
        expect(holds.filter((h) => h.client === m.name).length, m.name).toBeGreaterThan(0);
        expect(appends.filter((a) => a.client === m.name && a.seq !== null).length, m.name).toBeGreaterThan(
          0,
        );
      }
      expect(count('append', false) + count('acquire', false)).toBeGreaterThan(0);
      expect(commits.acknowledged).toBeGreaterThan(50);
      expect(survived.length + durability.length).toBe(CYCLES / 2);
    },
    600_000,
  );
});

const STRICT_DURABILITY = process.env.PLOYZ_E2E_STRICT_DURABILITY === '1';
/** Leader cut and healed this many times, each cut this long. */
const CYCLES = 4;
const CUT_MS = 8000;
const JEPSEN_CLIENT = join(import.meta.dirname, 'jepsen-client.ts');

interface JepsenEvent {
  op: string;
  client: string;
  ok?: boolean;
  [k: string]: unknown;
}

interface JepsenTarget {
  servers: string;
  installation: string;
}

/** `m`'s own ployz-nats (its bridge address .2; a joiner's subnet is the one it was given) and installation. */
async function jepsenTarget(m: Machine): Promise<JepsenTarget> {
  const machine = ((await m.h.ctl('status')).json as StatusView).machine;
  if (!machine) throw new Error(`${m.name} has no identity`);
  return {
    servers: `nats://${machine.subnet.replace(/0\/24$/, '2')}:4222`,
    installation: machine.installation,
  };
}

/** A jepsen-client.ts process in `m`'s netns on `m`'s own ployz-nats; `stop` ends it and returns its history. */
function jepsenClient(m: Machine, target: JepsenTarget | undefined, client: string, durationMs: number) {
  if (!target) throw new Error(`no target for ${m.name}`);
  const seed = join(m.h.stateDir, 'nats-auth', 'ployzd.nk');
  const proc = m.host.spawn(process.execPath, [
    '--conditions=ployz-source',
    JEPSEN_CLIENT,
    target.servers,
    seed,
    target.installation,
    client,
    String(durationMs),
    '3000',
  ]);
  const lines: JepsenEvent[] = [];
  let buffered = '';
  let stderr = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    setTimeout(
      () => reject(new Error(`jepsen client ${client} on ${m.name} not ready: ${stderr}`)),
      30_000,
    ).unref();
  });
  // Awaited by the caller that needs it (the reader never says ready).
  ready.catch(() => undefined);
  proc.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      const e = JSON.parse(p) as JepsenEvent;
      if (e.op === 'ready') markReady();
      lines.push(e);
    }
  });
  proc.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<JepsenEvent[]>((resolve) => proc.once('exit', () => resolve(lines)));
  return {
    ready,
    exit,
    code: () => proc.exitCode,
    /** The history so far. */
    events: () => [...lines],
    async stop(): Promise<JepsenEvent[]> {
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exit;
      clearTimeout(killer);
      expect(lines.at(-1)?.op, `${client} on ${m.name}: ${stderr}`).toBe('done');
      return lines;
    },
  };
}
