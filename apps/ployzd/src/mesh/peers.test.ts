/**
 * The peer derivation and its diff against wg0, as pure functions: who is peered (self never,
 * draining and joining still, removed or missing records not), with what AllowedIPs and endpoint,
 * and which add / update / remove turns the live set into the desired one.
 */
import type { MachineRecord } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { machineRecord } from '../../test/mesh/keys.ts';
import {
  canonicalCidr,
  type DesiredPeer,
  desiredPeers,
  type LivePeer,
  PERSISTENT_KEEPALIVE_S,
  peerChanges,
} from './peers.ts';

function key(n: number): string {
  return Buffer.alloc(32, n).toString('base64');
}

function machine(n: number, over: Partial<MachineRecord> = {}): MachineRecord {
  return machineRecord(`m${n}`, key(n), {
    overlay_ip: `fd70:6c6f:797a:${n}:0:0:0:1`,
    subnet: `10.210.${n}.0/24`,
    endpoints: [`10.232.0.${n}:51820`],
    ...over,
  });
}

/** wg0 holding exactly the desired peers (what a converged interface reports). */
function live(peers: DesiredPeer[]): LivePeer[] {
  return peers.map((p) => ({
    publicKey: p.publicKey,
    endpoint: p.endpoint,
    allowedIps: [...p.allowedIps].reverse(),
    latestHandshake: 0,
    persistentKeepalive: p.persistentKeepalive,
  }));
}

describe('desiredPeers', () => {
  it('peers every other machine with its overlay /128 + subnet /24 at its first endpoint, self excluded', () => {
    const self = machine(1);
    const peers = desiredPeers(self, [
      machine(3),
      self,
      machine(2, { endpoints: ['10.232.0.2:51820', '192.0.2.2:51820'] }),
    ]);
    expect(peers).toEqual([
      {
        machineId: 'm2',
        publicKey: key(2),
        endpoint: '10.232.0.2:51820',
        allowedIps: ['10.210.2.0/24', 'fd70:6c6f:797a:2::1/128'],
        subnet: '10.210.2.0/24',
        persistentKeepalive: PERSISTENT_KEEPALIVE_S,
      },
      {
        machineId: 'm3',
        publicKey: key(3),
        endpoint: '10.232.0.3:51820',
        allowedIps: ['10.210.3.0/24', 'fd70:6c6f:797a:3::1/128'],
        subnet: '10.210.3.0/24',
        persistentKeepalive: PERSISTENT_KEEPALIVE_S,
      },
    ]);
  });

  it('keeps draining and joining machines peered and drops removed ones', () => {
    const peers = desiredPeers(machine(1), [
      machine(2, { lifecycle: 'draining' }),
      machine(3, { lifecycle: 'removed' }),
      machine(4, { lifecycle: 'joining' }),
    ]);
    expect(peers.map((p) => p.machineId)).toEqual(['m2', 'm4']);
  });

  it('peers a record without endpoints with no endpoint (it reaches us first)', () => {
    const [peer] = desiredPeers(machine(1), [machine(2, { endpoints: [] })]);
    expect(peer?.endpoint).toBeNull();
    expect(peer?.allowedIps).toEqual(['10.210.2.0/24', 'fd70:6c6f:797a:2::1/128']);
  });

  it('has no peers on a single machine', () => {
    expect(desiredPeers(machine(1), [machine(1)])).toEqual([]);
  });

  it('canonicalises IPv6 CIDRs and endpoints as wg prints them', () => {
    expect(canonicalCidr('FD70:6C6F:797A:0:0:0:0:1/128')).toBe('fd70:6c6f:797a::1/128');
    expect(canonicalCidr('10.210.2.0/24')).toBe('10.210.2.0/24');
    const [peer] = desiredPeers(machine(1), [machine(2, { endpoints: ['[fd00:0:0:0:0:0:0:2]:51820'] })]);
    expect(peer?.endpoint).toBe('[fd00::2]:51820');
  });
});

describe('peerChanges', () => {
  const self = machine(1);

  it('adds every peer to an empty wg0', () => {
    const desired = desiredPeers(self, [self, machine(2), machine(3)]);
    expect(peerChanges([], desired)).toEqual(desired.map((peer) => ({ kind: 'add', peer })));
  });

  it('changes nothing when wg0 already holds the desired peers (AllowedIPs in any order)', () => {
    const desired = desiredPeers(self, [machine(2), machine(3)]);
    expect(peerChanges(live(desired), desired)).toEqual([]);
  });

  it('removes the peer of a machine that left', () => {
    const before = desiredPeers(self, [machine(2), machine(3)]);
    const after = desiredPeers(self, [machine(2)]);
    expect(peerChanges(live(before), after)).toEqual([{ kind: 'remove', publicKey: key(3) }]);
  });

  it('removes the peer of a machine whose record says removed', () => {
    const before = desiredPeers(self, [machine(2)]);
    const after = desiredPeers(self, [machine(2, { lifecycle: 'removed' })]);
    expect(peerChanges(live(before), after)).toEqual([{ kind: 'remove', publicKey: key(2) }]);
  });

  it('updates a peer whose endpoint changed', () => {
    const before = desiredPeers(self, [machine(2)]);
    const after = desiredPeers(self, [machine(2, { endpoints: ['10.232.0.99:51821'] })]);
    const [change] = peerChanges(live(before), after);
    expect(change).toMatchObject({ kind: 'update', reasons: ['endpoint'] });
    expect(change?.kind === 'update' && change.peer.endpoint).toBe('10.232.0.99:51821');
  });

  it('updates a peer whose subnet changed, and one whose keepalive is off', () => {
    const before = live(desiredPeers(self, [machine(2), machine(3)]));
    const moved = desiredPeers(self, [machine(2, { subnet: '10.210.200.0/24' }), machine(3)]);
    const withoutKeepalive = before.map((p) =>
      p.publicKey === key(3) ? { ...p, persistentKeepalive: null } : p,
    );
    expect(peerChanges(withoutKeepalive, moved)).toMatchObject([
      { kind: 'update', peer: { publicKey: key(2) }, reasons: ['allowed_ips'] },
      { kind: 'update', peer: { publicKey: key(3) }, reasons: ['keepalive'] },
    ]);
  });

  it('keeps the endpoint wg0 learned for a peer whose record has none', () => {
    const desired = desiredPeers(self, [machine(2, { endpoints: [] })]);
    const learned = live(desired).map((p) => ({ ...p, endpoint: '10.232.0.2:40000' }));
    expect(peerChanges(learned, desired)).toEqual([]);
  });

  it('removes peers no record asks for, and leaves the others alone', () => {
    const desired = desiredPeers(self, [machine(2)]);
    const stranger: LivePeer = {
      publicKey: key(9),
      endpoint: '192.0.2.9:51820',
      allowedIps: ['10.210.9.0/24'],
      latestHandshake: 0,
      persistentKeepalive: null,
    };
    expect(peerChanges([...live(desired), stranger], desired)).toEqual([
      { kind: 'remove', publicKey: key(9) },
    ]);
  });
});
