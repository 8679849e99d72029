import { describe, expect, it } from 'vitest';
import { bridgeIpam, pickWorkloadAddress } from './addresses.ts';

describe('bridge addresses', () => {
  it("keeps Docker's dynamic range clear of system and workload addresses", () => {
    expect(bridgeIpam('10.210.96.0/24')).toEqual({
      Subnet: '10.210.96.0/24',
      Gateway: '10.210.96.1',
      IPRange: '10.210.96.240/28',
    });
    expect(() => bridgeIpam('10.210.0.0/16')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });

  it('picks the lowest free workload address, never a system or dynamic one', () => {
    expect(pickWorkloadAddress('10.210.96.0/24', new Set())).toBe('10.210.96.16');
    const used = new Set(['10.210.96.2', '10.210.96.16', '10.210.96.17', '10.210.96.19']);
    expect(pickWorkloadAddress('10.210.96.0/24', used)).toBe('10.210.96.18');
    const all = new Set<string>();
    for (let host = 0; host < 240; host++) all.add(`10.210.96.${host}`);
    all.delete('10.210.96.239');
    expect(pickWorkloadAddress('10.210.96.0/24', all)).toBe('10.210.96.239');
    all.add('10.210.96.239');
    expect(() => pickWorkloadAddress('10.210.96.0/24', all)).toThrow(
      expect.objectContaining({ code: 'DEPLOY_NO_CAPACITY' }),
    );
  });
});
