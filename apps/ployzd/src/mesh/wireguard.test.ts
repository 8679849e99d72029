/**
 * The pure halves of the live shell: `wg show dump` parsing, the one `wg set` command line built
 * from a list of changes, and the route diff (pure, no I/O).
 */
import { describe, expect, it } from 'vitest';
import type { DesiredPeer } from './peers.ts';
import { parseRoutes, routeChanges } from './routes.ts';
import { parseWgDump, wgSetArgs } from './wireguard.ts';

const K1 = Buffer.alloc(32, 1).toString('base64');
const K2 = Buffer.alloc(32, 2).toString('base64');

describe('parseWgDump', () => {
  it('reads the interface key and port and every peer, dropping the private key', () => {
    const dump = [
      ['PRIVATE', K1, '51820', 'off'].join('\t'),
      [
        K2,
        '(none)',
        '10.232.0.2:51820',
        '10.210.2.0/24,fd70:6c6f:797a:2::1/128',
        '1764650000',
        '92',
        '180',
        '25',
      ].join('\t'),
      [K1, '(none)', '(none)', '(none)', '0', '0', '0', 'off'].join('\t'),
      '',
    ].join('\n');
    const state = parseWgDump(dump);
    expect(JSON.stringify(state)).not.toContain('PRIVATE');
    expect(state).toEqual({
      publicKey: K1,
      listenPort: 51820,
      peers: [
        {
          publicKey: K2,
          endpoint: '10.232.0.2:51820',
          allowedIps: ['10.210.2.0/24', 'fd70:6c6f:797a:2::1/128'],
          latestHandshake: 1764650000,
          persistentKeepalive: 25,
        },
        { publicKey: K1, endpoint: null, allowedIps: [], latestHandshake: 0, persistentKeepalive: null },
      ],
    });
  });
});

describe('wgSetArgs', () => {
  it('puts removals first and leaves out a missing endpoint', () => {
    const peer: DesiredPeer = {
      machineId: 'm2',
      publicKey: K2,
      endpoint: null,
      allowedIps: ['10.210.2.0/24'],
      subnet: '10.210.2.0/24',
      persistentKeepalive: 25,
    };
    expect(
      wgSetArgs('wg0', [
        { kind: 'add', peer },
        { kind: 'remove', publicKey: K1 },
      ]),
    ).toEqual([
      'wg',
      'set',
      'wg0',
      'peer',
      K1,
      'remove',
      'peer',
      K2,
      'persistent-keepalive',
      '25',
      'allowed-ips',
      '10.210.2.0/24',
    ]);
  });
});

describe('routeChanges', () => {
  const live = parseRoutes(
    JSON.stringify([
      { dst: '10.210.2.0/24', gateway: '10.210.1.2', dev: 'br-ployz' },
      { dst: '10.210.3.0/24', gateway: '10.210.1.9', dev: 'br-ployz' },
      { dst: '10.210.4.0/24', gateway: '10.210.1.2', dev: 'br-ployz' },
    ]),
  );

  it('replaces missing and mispointed routes and removes stale ones', () => {
    expect(
      routeChanges(live, { via: '10.210.1.2' }, ['10.210.2.0/24', '10.210.3.0/24', '10.210.5.0/24']),
    ).toEqual({
      replaced: ['10.210.3.0/24', '10.210.5.0/24'],
      removed: ['10.210.4.0/24'],
    });
  });

  it('leaves a converged table alone and empties it when there are no peers', () => {
    const converged = live.filter((r) => r.gateway === '10.210.1.2');
    expect(routeChanges(converged, { via: '10.210.1.2' }, ['10.210.2.0/24', '10.210.4.0/24'])).toEqual({
      replaced: [],
      removed: [],
    });
    expect(routeChanges([], { dev: 'wg0' }, [])).toEqual({ replaced: [], removed: [] });
    expect(routeChanges(live, { dev: 'wg0' }, [])).toEqual({
      replaced: [],
      removed: ['10.210.2.0/24', '10.210.3.0/24', '10.210.4.0/24'],
    });
    expect(parseRoutes('')).toEqual([]);
  });
});
