/**
 * The WireGuard peer set of one machine, as a pure function of the machine records (DESIGN.md §7):
 * every other machine that is not removed is a peer, reached at its first recorded endpoint, with
 * AllowedIPs = its overlay /128 + its workload /24. `peerChanges` diffs that against what wg0
 * holds now, so the shell (wireguard.ts) only applies the difference and a re-apply is a no-op.
 */
import type { MachineRecord } from '@ployz/types';

/** Keeps NAT mappings open and gives `machine ls` a fresh handshake (seconds). */
export const PERSISTENT_KEEPALIVE_S = 25;

export interface DesiredPeer {
  /** The machine the peer stands for (absent in what wg0 reports). */
  machineId: string;
  publicKey: string;
  /** `host:port` (`[v6]:port`), or null when the record has none: the peer reaches us first. */
  endpoint: string | null;
  /** Canonical CIDRs, sorted (see `canonicalCidr`). */
  allowedIps: string[];
  /** The peer's workload /24: routed through wg0 in the networking netns and via `.2` on the host. */
  subnet: string;
  persistentKeepalive: number;
}

/** One peer as wg0 reports it (`wg show wg0 dump`). */
export interface LivePeer {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds of the last handshake; 0 = never. */
  latestHandshake: number;
  persistentKeepalive: number | null;
}

export type PeerChange =
  | { kind: 'add'; peer: DesiredPeer }
  | { kind: 'update'; peer: DesiredPeer; reasons: ('endpoint' | 'allowed_ips' | 'keepalive')[] }
  | { kind: 'remove'; publicKey: string };

/** Lifecycles still peered: a joining machine needs the mesh to finish joining, a draining one keeps serving. */
const PEERED: ReadonlySet<MachineRecord['lifecycle']> = new Set(['joining', 'active', 'draining']);

/**
 * One spelling per CIDR, as `wg show` prints it: IPv6 compressed and lowercased, so
 * `fd70:6c6f:797a:0:0:1:2:3/128` from a record equals `fd70:6c6f:797a::1:2:3/128` from wg0.
 */
export function canonicalCidr(cidr: string): string {
  const slash = cidr.lastIndexOf('/');
  const address = slash === -1 ? cidr : cidr.slice(0, slash);
  const prefix = slash === -1 ? '' : cidr.slice(slash);
  if (!address.includes(':')) return `${address}${prefix}`;
  // The WHATWG URL parser serialises an IPv6 host in RFC 5952 form.
  return `${new URL(`http://[${address}]/`).hostname.slice(1, -1)}${prefix}`;
}

/** `host:port` as `wg show` prints it (an IPv6 host canonical, in brackets); null stays null. */
export function canonicalEndpoint(endpoint: string | null): string | null {
  if (endpoint === null) return null;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(endpoint);
  if (v6?.[1] === undefined || v6[2] === undefined) return endpoint;
  return `[${canonicalCidr(v6[1])}]:${v6[2]}`;
}

/** The peers `self` should have: every other peered machine, in id order. */
export function desiredPeers(
  self: Pick<MachineRecord, 'id' | 'public_key'>,
  records: readonly MachineRecord[],
): DesiredPeer[] {
  return records
    .filter((r) => r.id !== self.id && r.public_key !== self.public_key && PEERED.has(r.lifecycle))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((r) => ({
      machineId: r.id,
      publicKey: r.public_key,
      endpoint: canonicalEndpoint(r.endpoints[0] ?? null),
      allowedIps: [canonicalCidr(`${r.overlay_ip}/128`), canonicalCidr(r.subnet)].sort(),
      subnet: canonicalCidr(r.subnet),
      persistentKeepalive: PERSISTENT_KEEPALIVE_S,
    }));
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const left = [...new Set(a.map(canonicalCidr))].sort();
  const right = [...new Set(b.map(canonicalCidr))].sort();
  return left.length === right.length && left.every((v, i) => v === right[i]);
}

/**
 * What turns `current` into `desired`: adds, updates (endpoint, AllowedIPs or keepalive differ)
 * and removals of peers no record asks for. A desired peer without an endpoint keeps whatever
 * endpoint wg0 learned from its handshakes.
 */
export function peerChanges(current: readonly LivePeer[], desired: readonly DesiredPeer[]): PeerChange[] {
  const live = new Map(current.map((p) => [p.publicKey, p]));
  const wanted = new Set(desired.map((p) => p.publicKey));
  const changes: PeerChange[] = [];
  for (const peer of desired) {
    const now = live.get(peer.publicKey);
    if (now === undefined) {
      changes.push({ kind: 'add', peer });
      continue;
    }
    const reasons: ('endpoint' | 'allowed_ips' | 'keepalive')[] = [];
    if (peer.endpoint !== null && peer.endpoint !== canonicalEndpoint(now.endpoint)) reasons.push('endpoint');
    if (!sameSet(peer.allowedIps, now.allowedIps)) reasons.push('allowed_ips');
    if ((now.persistentKeepalive ?? 0) !== peer.persistentKeepalive) reasons.push('keepalive');
    if (reasons.length > 0) changes.push({ kind: 'update', peer, reasons });
  }
  for (const peer of current) {
    if (!wanted.has(peer.publicKey)) changes.push({ kind: 'remove', publicKey: peer.publicKey });
  }
  return changes;
}
