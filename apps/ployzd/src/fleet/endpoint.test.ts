import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import {
  type InterfaceTable,
  lanAddress,
  parseEndpoint,
  parseEndpoints,
  recordEndpoints,
} from './endpoint.ts';

const v4 = (address: string, internal = false) => ({ address, family: 'IPv4', internal });
const v6 = (address: string) => ({ address, family: 'IPv6', internal: false });

describe('lanAddress (os.networkInterfaces() shape)', () => {
  it('takes the first non-loopback IPv4 address in interface order', () => {
    const table: InterfaceTable = {
      lo: [v4('127.0.0.1', true), { address: '::1', family: 'IPv6', internal: true }],
      eth0: [v6('fe80::1'), v4('192.0.2.10')],
      eth1: [v4('198.51.100.4')],
    };
    expect(lanAddress(table)).toBe('192.0.2.10');
  });

  it('skips Docker and Ployz bridges, veths, wg0, link-local and the workload range', () => {
    const table: InterfaceTable = {
      docker0: [v4('172.17.0.1')],
      'br-0123abcd': [v4('172.18.0.1')],
      veth12ab: [v4('169.254.3.3')],
      ployz: [v4('10.210.7.1')],
      wg0: [v4('10.99.0.1')],
      ens3: [v4('169.254.10.10'), v4('10.210.9.5')],
      ens4: [v4('203.0.113.5')],
    };
    expect(lanAddress(table, { interfaces: ['ployz'], cidrs: ['10.210.0.0/16'] })).toBe('203.0.113.5');
  });

  it('accepts the numeric family of older Node versions and returns null when nothing fits', () => {
    expect(lanAddress({ eth0: [{ address: '192.0.2.3', family: 4, internal: false }] })).toBe('192.0.2.3');
    expect(
      lanAddress({ lo: [v4('127.0.0.1', true)], eth0: [v6('2001:db8::1')], eth1: undefined }),
    ).toBeNull();
  });
});

describe('endpoints', () => {
  it('parses ip:port and [v6]:port, comma lists and repeats, deduplicated in order', () => {
    expect(parseEndpoint('192.0.2.1:51820')).toBe('192.0.2.1:51820');
    expect(parseEndpoint('[2001:db8:0:0::1]:51820')).toBe('[2001:db8:0:0::1]:51820');
    expect(parseEndpoints(['192.0.2.1:1,192.0.2.2:2', '192.0.2.1:1', ' 192.0.2.3:3 '])).toEqual([
      '192.0.2.1:1',
      '192.0.2.2:2',
      '192.0.2.3:3',
    ]);
  });

  it('refuses anything else with INVALID_ARGUMENT naming the value', () => {
    for (const bad of [
      '192.0.2.1',
      '192.0.2.1:0',
      '192.0.2.1:70000',
      '300.1.1.1:5',
      'host.example:51820',
      ':51820',
      '2001:db8::1',
      '[zz]:1',
      '192.0.2.1:x',
    ]) {
      try {
        parseEndpoints([bad]);
        expect.unreachable(bad);
      } catch (error) {
        expect(isPloyzError(error, 'INVALID_ARGUMENT'), bad).toBe(true);
        expect((error as Error).message).toContain(bad);
      }
    }
  });

  it('defaults to <LAN address>:<WireGuard port>; configured endpoints win', () => {
    expect(recordEndpoints(undefined, '192.0.2.10', 51820)).toEqual(['192.0.2.10:51820']);
    expect(recordEndpoints([], '192.0.2.10', 4000)).toEqual(['192.0.2.10:4000']);
    expect(recordEndpoints(['203.0.113.1:51820'], '192.0.2.10', 51820)).toEqual(['203.0.113.1:51820']);
    expect(recordEndpoints(undefined, null, 51820)).toEqual([]);
  });
});
