import { describe, expect, it } from 'vitest';
import { machineSubnet, overlayAddress, parseIpv4Cidr, subnetHost } from './address.ts';

const KEY_A = 'gN65BkIKy1eCE9pP1wdc8ROUtkHLF2PfAqYdyYBz6EA=';
const KEY_B = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=';

describe('machine addresses', () => {
  it('derives a stable overlay address inside the /48 from the public key', () => {
    const a = overlayAddress(KEY_A);
    expect(a).toBe(overlayAddress(KEY_A));
    expect(a.startsWith('fd70:6c6f:797a:')).toBe(true);
    expect(a.split(':')).toHaveLength(8);
    expect(overlayAddress(KEY_B)).not.toBe(a);
  });

  it('rejects a prefix that is not a /48', () => {
    expect(() => overlayAddress(KEY_A, 'fd00::/64')).toThrow(/\/48/);
  });

  it('picks a /24 inside the cluster range', () => {
    const s = machineSubnet(KEY_A, '10.210.0.0/16');
    expect(s).toMatch(/^10\.210\.\d{1,3}\.0\/24$/);
    expect(machineSubnet(KEY_A, '10.210.0.0/16')).toBe(s);
    expect(machineSubnet(KEY_A, '10.99.7.0/24')).toBe('10.99.7.0/24');
    expect(() => machineSubnet(KEY_A, '10.0.0.0/25')).toThrow(/\/24 or larger/);
  });

  it('normalises and validates CIDRs and host addresses', () => {
    expect(parseIpv4Cidr('10.210.5.9/16').base).toBe(parseIpv4Cidr('10.210.0.0/16').base);
    expect(() => parseIpv4Cidr('300.1.1.1/8')).toThrow();
    expect(subnetHost('10.210.3.0/24', 2)).toBe('10.210.3.2');
  });
});
