/**
 * Issue 18 item 2 on real machines: three netns hosts on one LAN, each with its own dockerd and
 * its own ployzd (inside the netns, as on a real host) and data plane. m1 is initialised and
 * issues invites; forged and expired tokens change nothing on the joiner (m3) or in m1's store;
 * m2 and m3 join at the same moment and get different /24s; a used token is refused for a fourth
 * ployzd and changes nothing. Afterwards every record carries its LAN endpoint, m1 and each joiner
 * peer (wg0 on each has the other's key), and a workload on m1 reaches workloads on m2 and m3 by
 * container IP. (m2 and m3 do not learn about each other yet: NATS across machines, item 4.)
 * Needs root and the images (bash scripts/images.sh).
 */
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createNetnsLan, type NetnsLan } from '@ployz/testkit';
import type { MachineRecord } from '@ployz/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DaemonHarness } from './daemon-harness.ts';
import { gatewayGet, helloManifest } from './deploy-harness.ts';
import {
  echoOn,
  errorCode,
  fetchFrom,
  host16,
  JOIN_PORT,
  listed,
  listing,
  type Machine,
  machinesAnswering,
  records,
  startMachine,
  startPloyzd,
  stopPloyzd,
  until,
  WG_PORT,
  wgPeers,
} from './fleet-harness.ts';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI) throw new Error('fleet-join.test.ts needs root (network namespaces)');
if (!isRoot) console.warn('fleet-join.test.ts SKIPPED: not root');

describe.skipIf(!isRoot)('join with invites: three netns machines, real ployzd on each', () => {
  let lan: NetnsLan;
  let m1: Machine;
  let m2: Machine;
  let m3: Machine;
  /** A fourth, never-initialised ployzd (in m3's netns) that tries a used token. */
  let h4: DaemonHarness;
  let p4: ChildProcess | null = null;

  beforeAll(async () => {
    lan = await createNetnsLan('fleet');
    [m1, m2, m3] = await Promise.all([
      startMachine(lan, 'm1'),
      startMachine(lan, 'm2'),
      startMachine(lan, 'm3'),
    ]);
    h4 = await DaemonHarness.create();
    await Promise.all([startPloyzd(m1, true), startPloyzd(m2, false), startPloyzd(m3, false)]);
  }, 300_000);
  afterAll(async () => {
    await Promise.all([stopPloyzd(p4), ...[m1, m2, m3].map((m) => stopPloyzd(m?.ployzd))]);
    await Promise.all([m1, m2, m3].map((m) => m?.host.destroy()));
    await lan?.destroy();
    await Promise.all([m1, m2, m3].map((m) => m?.h[Symbol.asyncDispose]()));
    await h4?.[Symbol.asyncDispose]();
  }, 120_000);

  it('refused tokens change nothing; two joins at once get two /24s; each joiner meshes with m1; workload → workload by container IP', async () => {
    const init = await m1.h.ctl('machine', 'init', '--id', 'm1', '--installation', m1.h.installation);
    expect(init.code, `${init.stdout}${init.stderr}\n${m1.h.logs.join('')}`).toBe(0);
    // An invite needs NATS, the record and the join listener: retried until ployzd has them.
    const issue = (ttl: string) =>
      until(`an invite from m1 (ttl ${ttl})`, 120_000, async () => {
        const r = await m1.h.ctl('machine', 'invite', '--ttl', ttl);
        return r.code === 0 ? (r.json as { token: string; join: string }) : null;
      });
    const a = await issue('10m');
    const b = await issue('10m');
    const short = await issue('1s');
    expect(a.join).toBe(`${m1.lan}:${JOIN_PORT}`);
    const status = await m1.h.ctl('status');
    expect((status.json as { join: { address: string | null } }).join.address).toBe(a.join);
    const m1Record = await until('m1 record with its LAN endpoint', 30_000, async () => {
      const self = (await records(m1)).find((r) => r.id === 'm1');
      return self?.endpoints.length ? self : null;
    });
    expect(m1Record.endpoints).toEqual([`${m1.lan}:${WG_PORT}`]);

    // Forged and expired: refused by m1 with their codes; nothing on m3's disk, nothing in m1's store.
    const m3Before = await listing(m3.h.dir);
    const storeBefore = await records(m1);
    const [v, payload = '', sig = ''] = a.token.split('.');
    const bytes = Buffer.from(payload, 'base64url');
    bytes[3] = (bytes[3] ?? 0) ^ 0x01;
    const forged = await m3.h.ctl(
      'machine',
      'join',
      `${v}.${bytes.toString('base64url')}.${sig}`,
      '--id',
      'm3',
    );
    expect([forged.code, errorCode(forged)]).toEqual([2, 'INVITE_INVALID']);
    await new Promise((r) => setTimeout(r, 1500));
    const expired = await m3.h.ctl('machine', 'join', short.token, '--id', 'm3');
    expect([expired.code, errorCode(expired)]).toEqual([2, 'INVITE_EXPIRED']);
    expect(await listing(m3.h.dir)).toEqual(m3Before);
    expect(await records(m1)).toEqual(storeBefore);

    // m2 and m3 join at the same moment: both in, two different /24s.
    const [j2, j3] = await Promise.all([
      m2.h.ctl('machine', 'join', a.token, '--id', 'm2'),
      m3.h.ctl('machine', 'join', b.token, '--id', 'm3'),
    ]);
    expect(j2.code, `${j2.stdout}${j2.stderr}\n${m2.h.logs.join('').slice(-4000)}`).toBe(0);
    expect(j3.code, `${j3.stdout}${j3.stderr}\n${m3.h.logs.join('').slice(-4000)}`).toBe(0);
    type Joined = { machine: { installation: string; subnet: string; public_key: string } };
    const id2 = (j2.json as Joined).machine;
    const id3 = (j3.json as Joined).machine;
    expect([id2.installation, id3.installation]).toEqual([m1.h.installation, m1.h.installation]);
    expect(new Set([m1Record.subnet, id2.subnet, id3.subnet]).size).toBe(3);

    // A used token, from a fourth ployzd that was never initialised: INVITE_USED, nothing written.
    p4 = await startPloyzd(m3, false, h4);
    const h4Before = await listing(h4.dir);
    const reused = await h4.ctl('machine', 'join', a.token, '--id', 'm4');
    expect([reused.code, errorCode(reused)]).toEqual([2, 'INVITE_USED']);
    expect(await listing(h4.dir)).toEqual(h4Before);

    // m1's store holds both joiners, each with its LAN endpoint and the /24 it was given.
    const all = await records(m1);
    expect(all.map((r) => r.id).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(all.find((r) => r.id === 'm2')).toMatchObject({
      subnet: id2.subnet,
      endpoints: [`${m2.lan}:${WG_PORT}`],
    });
    expect(all.find((r) => r.id === 'm3')).toMatchObject({
      subnet: id3.subnet,
      endpoints: [`${m3.lan}:${WG_PORT}`],
    });

    // m1 and each joiner peer: wg0 on each side carries the other's key.
    for (const [self, key] of [
      [m1, id2.public_key],
      [m1, id3.public_key],
      [m2, m1Record.public_key],
      [m3, m1Record.public_key],
    ] as const) {
      await until(`${self.name} peers with ${key}`, 90_000, async () =>
        (await wgPeers(self).catch((): string[] => [])).includes(key) ? true : null,
      );
    }

    // Workloads on m2 and m3 serve; a workload on m1 reaches each by container IP across wg0, and
    // each sees m1's workload's own container IP: routed over the tunnel, not NATed.
    await echoOn(m2, host16(id2.subnet));
    await echoOn(m3, host16(id3.subnet));
    const logs = () => [m1, m2, m3].map((m) => `${m.name}:\n${m.h.logs.join('').slice(-2000)}`).join('\n');
    const source = host16(m1Record.subnet);
    expect(await fetchFrom(m1, 'fleet-client-2', source, host16(id2.subnet)), logs()).toBe(source);
    const source2 = host16(m1Record.subnet, 17);
    expect(await fetchFrom(m1, 'fleet-client-3', source2, host16(id3.subnet)), logs()).toBe(source2);

    // NATS spans the machines (m2's and m3's ployz-nats are leaves of m1's JetStream): each joiner
    // reads the one store — m2 sees m3, which joined after m2's answer was written — and the two
    // joiners peer with each other from those records, with no restart.
    for (const m of [m2, m3]) {
      await until(`${m.name} reads every record from the shared store`, 60_000, async () => {
        const ids = (await records(m).catch((): MachineRecord[] => [])).map((r) => r.id).sort();
        return ids.join() === 'm1,m2,m3' ? true : null;
      });
    }
    for (const [self, key] of [
      [m2, id3.public_key],
      [m3, id2.public_key],
    ] as const) {
      await until(`${self.name} peers with ${key}`, 90_000, async () =>
        (await wgPeers(self).catch((): string[] => [])).includes(key) ? true : null,
      );
    }
    // A joined machine holds the installation's invite key: it issues invites too, recorded in
    // the one store (m1 reads the nonce m2 wrote).
    const fromM2 = await m2.h.ctl('machine', 'invite', '--ttl', '10m');
    expect(fromM2.code, `${fromM2.stdout}${fromM2.stderr}\n${m2.h.logs.join('').slice(-3000)}`).toBe(0);
    // Its workloads reach m3's across wg0 (m2 → m3 is a path only the shared records made).
    const source3 = host16(id2.subnet, 18);
    expect(await fetchFrom(m2, 'fleet-client-23', source3, host16(id3.subnet)), logs()).toBe(source3);
  }, 480_000);

  it('a deploy of replicas = 3 on m1 places one instance per machine over RPC; every gateway reaches all three', async () => {
    const file = join(m1.h.dir, 'fleet-hello.toml');
    const host = 'fleet-hello.localhost';
    await writeFile(
      file,
      helloManifest({ version: 'v1', host, namespace: 'fleet' }).replace(
        'name = "hello"\n',
        'name = "hello"\nplacement = { replicas = 3 }\n',
      ),
    );
    const logs = () => [m1, m2, m3].map((m) => `${m.name}:\n${m.h.logs.join('').slice(-3000)}`).join('\n');
    const deployed = await m1.h.ctl('deploy', '-f', file);
    expect(deployed.code, `${deployed.stdout}${deployed.stderr}\n${logs()}`).toBe(0);
    // machine ls on m1: every machine's ployzd answers a ping now; wg0 has a handshake with each
    // peer (none with itself).
    const live = new Map((await listed(m1)).map((e) => [e.id, e.live]));
    expect([...live.keys()].sort()).toEqual(['m1', 'm2', 'm3']);
    for (const [id, l] of live) expect(l.reachable, `${id}: ${l.detail}`).toBe(true);
    expect(live.get('m1')?.handshake_at).toBeNull();
    for (const id of ['m2', 'm3']) expect(Date.parse(live.get(id)?.handshake_at ?? '')).toBeGreaterThan(0);
    // The history is the one store's: m3 lists the deploy m1 made.
    const history = await m3.h.ctl('deploy', 'ls');
    expect(history.code, history.stderr).toBe(0);
    expect(history.stdout).toContain('fleet');
    // One running instance on each machine's own dockerd; the container names its machine.
    const hostnames = new Map<string, string>();
    const instances = new Map<string, string>();
    for (const m of [m1, m2, m3]) {
      const running = await m.dockerd.docker.listContainers({
        filters: { label: ['ployz.namespace=fleet'], status: ['running'] },
      });
      expect(running.length, `${m.name}: ${JSON.stringify(running.map((c) => c.Names))}`).toBe(1);
      const info = await m.dockerd.docker.getContainer(running[0]?.Id ?? '').inspect();
      hostnames.set(info.Config.Hostname, m.name);
      instances.set(m.name, info.Config.Labels?.['ployz.instance'] ?? '');
    }
    // Each machine's gateway routes to instances on all three (answers name their container).
    for (const m of [m1, m2, m3]) {
      expect(await machinesAnswering(m, host, hostnames, 3), `${m.name}'s gateway\n${logs()}`).toEqual([
        'm1',
        'm2',
        'm3',
      ]);
    }
    // From the instance on m3, its service's short name resolves (ployz-dns on m3, by source IP)
    // to the three instances' addresses, one per machine's /24, and each answers across wg0.
    const onM3 = instances.get('m3') ?? '';
    const probe =
      "require('dns').promises.resolve4('hello').then(async a=>{const ok=[];for(const ip of a.sort()){const r=await fetch('http://'+ip+':8080/',{signal:AbortSignal.timeout(3000)}).catch(()=>null);ok.push(ip+'='+(r?r.status:0))}console.log(ok.join(' '))},e=>console.log('dns error '+e.code))";
    const resolved = await m3.h.run(['exec', 'fleet/hello', '--instance', onM3, '--', 'node', '-e', probe]);
    expect(resolved.code, `${resolved.stdout}${resolved.stderr}`).toBe(0);
    const answers = resolved.stdout.trim().split(' ');
    expect(answers.length, resolved.stdout).toBe(3);
    expect(
      answers.every((a) => a.endsWith('=200')),
      resolved.stdout,
    ).toBe(true);
    expect(new Set(answers.map((a) => a.split('.').slice(0, 3).join('.'))).size, resolved.stdout).toBe(3);

    // machine rm while m3 runs a slot: MACHINE_IN_USE, nothing changed. drain → the next
    // deploy moves slot 2 off m3 → rm: every member drops m3's peer, no gateway sends it traffic.
    const refused = await m1.h.ctl('machine', 'rm', 'm3');
    expect([refused.code, errorCode(refused)], refused.stderr).toEqual([2, 'MACHINE_IN_USE']);
    expect((await records(m1)).find((r) => r.id === 'm3')?.lifecycle).toBe('active');
    const drained = await m1.h.ctl('machine', 'drain', 'm3');
    expect(drained.code, drained.stderr).toBe(0);
    const moved = await m1.h.ctl('deploy', '-f', file);
    expect(moved.code, `${moved.stdout}${moved.stderr}\n${logs()}`).toBe(0);
    await until('m3 runs no instance of fleet', 60_000, async () =>
      (await m3.dockerd.docker.listContainers({ filters: { label: ['ployz.namespace=fleet'] } })).length === 0
        ? true
        : null,
    );
    const m3Key = (await records(m1)).find((r) => r.id === 'm3')?.public_key ?? '';
    const removed = await m1.h.ctl('machine', 'rm', 'm3');
    expect(removed.code, removed.stderr).toBe(0);
    expect((removed.json as { abandoned: { slots: string[] } }).abandoned.slots).toEqual([]);
    for (const self of [m1, m2]) {
      await until(`${self.name} drops m3's peer`, 60_000, async () =>
        (await wgPeers(self).catch(() => [m3Key])).includes(m3Key) ? null : true,
      );
    }
    const after = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await gatewayGet({
        host: m1.host.address,
        port: m1.h.gatewayPort,
        path: '/',
        hostHeader: host,
        timeoutMs: 5000,
      });
      expect(r.status).toBe(200);
      after.add(/\) from (\S+)\s*$/.exec(r.body)?.[1] ?? '');
    }
    // Three instances answer, each a container running on m1 or m2 now.
    const serving = new Set<string>();
    for (const m of [m1, m2]) {
      for (const c of await m.dockerd.docker.listContainers({
        filters: { label: ['ployz.namespace=fleet'] },
      })) {
        serving.add((await m.dockerd.docker.getContainer(c.Id).inspect()).Config.Hostname);
      }
    }
    expect(serving.size).toBe(3);
    expect([...after].sort()).toEqual([...serving].sort());
  }, 240_000);
});
