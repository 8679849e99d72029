/**
 * The store members as this machine reaches them (issue 19 item 3: "status names the missing
 * peers"): a TCP connect to each member's leaf port over the mesh, the port this machine's
 * ployz-nats uses to reach the store. It does not need the store to answer, so with two members
 * lost — no quorum, nothing readable — `status` still names which ones are gone. The overlay
 * addresses live on wg0 in ployz-networking's network namespace, so the connects are made there
 * (one short `nsenter` child for all members); `netns` null probes from this process (tests).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { formatHostPort, NATS_STORE_LEAF_PORT, type StoreStatusView } from '@ployz/protocol';
import type { DaemonContext } from '../daemon/context.ts';
import { storeServerName } from './member.ts';
import { readStoreLeaf, type StoreLeafRecord } from './member-state.ts';

/** machine, server, address, reachable, rtt_ms (TCP connect time) and problem (why not reachable). */
export type StorePeer = StoreStatusView['peers'][number];

export const PEER_PROBE_MS = 1000;

function connectOnce(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ ms: number } | { problem: string }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect({ host, port });
    const done = (out: { ms: number } | { problem: string }) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(out);
    };
    const timer = setTimeout(() => done({ problem: `no answer in ${timeoutMs} ms` }), timeoutMs);
    socket.once('connect', () => done({ ms: Math.round((performance.now() - started) * 10) / 10 }));
    socket.once('error', (err: NodeJS.ErrnoException) => done({ problem: err.code ?? err.message }));
  });
}

const PROBE = `
const net = require('node:net');
const [targets, timeoutMs] = JSON.parse(process.argv[1]);
Promise.all(targets.map(([host, port]) => new Promise((resolve) => {
  const started = process.hrtime.bigint();
  const socket = net.connect({ host, port });
  const done = (out) => { clearTimeout(timer); socket.destroy(); resolve(out); };
  const timer = setTimeout(() => done({ problem: 'no answer in ' + timeoutMs + ' ms' }), timeoutMs);
  socket.once('connect', () => done({ ms: Math.round(Number(process.hrtime.bigint() - started) / 1e5) / 10 }));
  socket.once('error', (e) => done({ problem: e.code || e.message }));
}))).then((r) => process.stdout.write(JSON.stringify(r)));
`;

type Outcome = { ms: number } | { problem: string };

/** The connects made inside `netns` by one child; every target fails alike if the child does. */
function connectAllIn(netns: string, targets: [string, number][], timeoutMs: number): Promise<Outcome[]> {
  return new Promise((resolve) => {
    const child = spawn(
      'nsenter',
      [`--net=${netns}`, process.execPath, '-e', PROBE, JSON.stringify([targets, timeoutMs])],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => {
      out += t;
    });
    child.stderr.setEncoding('utf8').on('data', (t: string) => {
      err = (err + t).slice(-500);
    });
    const failed = (problem: string) => resolve(targets.map(() => ({ problem })));
    child.once('error', (e) => failed(`nsenter: ${e.message}`));
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(out) as Outcome[]);
      } catch {
        failed(`probe exited ${code}: ${err.trim() || 'no output'}`);
      }
    });
  });
}

/**
 * Every member of the switch-over record, probed at once, from inside `netns` (ployz-networking's,
 * where wg0 is) or from this process when null. `port`: the leaf port, for tests.
 */
export async function probeStorePeers(
  leaf: Pick<StoreLeafRecord, 'members'>,
  options: { timeoutMs?: number; port?: number; netns?: string | null } = {},
): Promise<StorePeer[]> {
  const port = options.port ?? NATS_STORE_LEAF_PORT;
  const timeoutMs = options.timeoutMs ?? PEER_PROBE_MS;
  const targets = leaf.members.map((m): [string, number] => [m.overlay_ip, port]);
  const outcomes =
    options.netns === undefined || options.netns === null
      ? await Promise.all(targets.map(([host, p]) => connectOnce(host, p, timeoutMs)))
      : await connectAllIn(options.netns, targets, timeoutMs);
  return leaf.members.map((m, i) => {
    const out = outcomes[i] ?? { problem: 'not probed' };
    return {
      machine: m.machine_id,
      server: storeServerName(m.machine_id),
      address: formatHostPort({ host: m.overlay_ip, port }),
      reachable: 'ms' in out,
      rtt_ms: 'ms' in out ? out.ms : null,
      problem: 'problem' in out ? out.problem : null,
    };
  });
}

/**
 * Whether this machine reaches a majority of the store members now (false on a store without
 * members: a standalone store has nobody to fail over to). A deploy's store writes are retried
 * only while this holds (deploy/adapters/store-retry.ts).
 */
export async function membersMajorityReachable(
  stateDir: string,
  netns: () => Promise<string | null>,
  timeoutMs = 500,
): Promise<boolean> {
  const leaf = await readStoreLeaf(stateDir).catch(() => null);
  if (leaf === null) return false;
  const peers = await probeStorePeers(leaf, { timeoutMs, netns: await netns().catch(() => null) });
  return peers.filter((p) => p.reachable).length * 2 > peers.length;
}

/** ployz-networking's network namespace (`/proc/<pid>/ns/net`, where wg0 is); null when it is not running. */
export async function networkingNetns(ctx: Pick<DaemonContext, 'docker' | 'config'>): Promise<string | null> {
  const info = await ctx.docker.docker.getContainer(`${ctx.config.containerPrefix}networking`).inspect();
  return info.State.Running && info.State.Pid ? `/proc/${info.State.Pid}/ns/net` : null;
}
