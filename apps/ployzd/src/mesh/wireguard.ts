/**
 * wg0 inside ployz-networking, live: reads its state (`wg show wg0 dump`, parsed) and applies the
 * difference to the desired peers with one `wg set` (removals first, then adds and updates), then
 * routes each peer's subnet through wg0 in that netns. Nothing restarts: the container, its
 * children and the tunnels to unchanged peers carry on. Adopt-first: whatever wg0 holds is the
 * starting point, and a re-apply of the same peers runs no change at all.
 */
import { type CommandRunner, mustRun } from './command.ts';
import { canonicalEndpoint, type DesiredPeer, type LivePeer, type PeerChange, peerChanges } from './peers.ts';
import { type RouteChanges, syncRoutes } from './routes.ts';

export interface WireguardState {
  publicKey: string;
  listenPort: number;
  peers: LivePeer[];
}

export interface MeshApplyResult {
  publicKey: string;
  peers: PeerChange[];
  routes: RouteChanges;
}

const none = (field: string | undefined): string | null =>
  field === undefined || field === '' || field === '(none)' ? null : field;

/**
 * `wg show <iface> dump`: the interface line (private key, public key, listen port, fwmark), then
 * one line per peer (public key, preshared key, endpoint, allowed ips, latest handshake, rx, tx,
 * keepalive), tab-separated. The private key is dropped here and goes no further.
 */
export function parseWgDump(text: string): WireguardState {
  const [head = '', ...rest] = text.split('\n').filter((l) => l.trim() !== '');
  const [, publicKey = '', listenPort = '0'] = head.split('\t');
  if (publicKey === '') throw new Error(`wg show dump has no interface line: ${head.slice(0, 20)}…`);
  const peers = rest.map((line): LivePeer => {
    const [key = '', , endpoint, allowed, handshake, , , keepalive] = line.split('\t');
    const ips = none(allowed);
    const every = none(keepalive === 'off' ? undefined : keepalive);
    return {
      publicKey: key,
      endpoint: canonicalEndpoint(none(endpoint)),
      allowedIps: ips === null ? [] : ips.split(','),
      latestHandshake: Number(handshake ?? 0),
      persistentKeepalive: every === null ? null : Number(every),
    };
  });
  return { publicKey, listenPort: Number(listenPort), peers };
}

/** The `wg set` arguments for a list of changes: removals first, so an AllowedIP moving between peers lands once. */
export function wgSetArgs(iface: string, changes: readonly PeerChange[]): string[] {
  const args = ['wg', 'set', iface];
  for (const c of changes) if (c.kind === 'remove') args.push('peer', c.publicKey, 'remove');
  for (const c of changes) {
    if (c.kind === 'remove') continue;
    const p = c.peer;
    args.push('peer', p.publicKey);
    if (p.endpoint !== null) args.push('endpoint', p.endpoint);
    args.push('persistent-keepalive', String(p.persistentKeepalive), 'allowed-ips', p.allowedIps.join(','));
  }
  return args;
}

export class WireguardInterface {
  readonly #run: CommandRunner;
  readonly #iface: string;
  readonly #where: string;

  /** `run` executes inside the netns that owns the interface (dockerExecRunner on ployz-networking). */
  constructor(run: CommandRunner, options: { iface?: string; where?: string } = {}) {
    this.#run = run;
    this.#iface = options.iface ?? 'wg0';
    this.#where = options.where ?? 'ployz-networking';
  }

  async read(): Promise<WireguardState> {
    return parseWgDump(await mustRun(this.#run, ['wg', 'show', this.#iface, 'dump'], this.#where));
  }

  /** Makes the interface's peers exactly `desired` and routes their subnets through it. */
  async apply(desired: readonly DesiredPeer[]): Promise<MeshApplyResult> {
    const state = await this.read();
    const changes = peerChanges(state.peers, desired);
    if (changes.length > 0) await mustRun(this.#run, wgSetArgs(this.#iface, changes), this.#where);
    const routes = await syncRoutes(
      this.#run,
      this.#where,
      { dev: this.#iface },
      desired.map((p) => p.subnet),
    );
    return { publicKey: state.publicKey, peers: changes, routes };
  }
}
