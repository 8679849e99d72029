/**
 * The store members as this machine reaches them (issue 19 item 3: "status names the missing
 * peers"): a TCP connect to each member's leaf port over the mesh, the port this machine's
 * ployz-nats uses to reach the store. It does not need the store to answer, so with two members
 * lost — no quorum, nothing readable — `status` still names which ones are gone.
 */
import { connect } from 'node:net';
import { formatHostPort, NATS_STORE_LEAF_PORT, type StoreStatusView } from '@ployz/protocol';
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

/** Every member of the switch-over record, probed at once (`port`: the leaf port, for tests). */
export async function probeStorePeers(
  leaf: Pick<StoreLeafRecord, 'members'>,
  options: { timeoutMs?: number; port?: number } = {},
): Promise<StorePeer[]> {
  const port = options.port ?? NATS_STORE_LEAF_PORT;
  return Promise.all(
    leaf.members.map(async (m) => {
      const out = await connectOnce(m.overlay_ip, port, options.timeoutMs ?? PEER_PROBE_MS);
      return {
        machine: m.machine_id,
        server: storeServerName(m.machine_id),
        address: formatHostPort({ host: m.overlay_ip, port }),
        reachable: 'ms' in out,
        rtt_ms: 'ms' in out ? out.ms : null,
        problem: 'problem' in out ? out.problem : null,
      };
    }),
  );
}

/**
 * Whether this machine reaches a majority of the store members now (false on a store without
 * members: a standalone store has nobody to fail over to). A deploy's store writes are retried
 * only while this holds (deploy/adapters/store-retry.ts).
 */
export async function membersMajorityReachable(stateDir: string, timeoutMs = 500): Promise<boolean> {
  const leaf = await readStoreLeaf(stateDir).catch(() => null);
  if (leaf === null) return false;
  const peers = await probeStorePeers(leaf, { timeoutMs });
  return peers.filter((p) => p.reachable).length * 2 > peers.length;
}
