import { describe, expect, it } from 'vitest';
import { admit, encodeHeader, type IssuedSlot, parseHeader, type TransferHeader } from './header.ts';

const header: TransferHeader = {
  v: 1,
  token: 't1',
  ns: 'shop',
  volume: 'data',
  driver: 'zfs',
  snapshot: 'd1-bulk',
  base: null,
  guid: '123',
};
const slot: IssuedSlot = {
  ns: 'shop',
  volume: 'data',
  driver: 'zfs',
  snapshot: 'd1-bulk',
  base: null,
  guid: '123',
  sourceAddress: '10.210.0.1',
  expiresAtMs: 1000,
};

describe('volume-move transfer header', () => {
  it('round-trips and refuses malformed lines', () => {
    const line = encodeHeader(header).toString('utf8');
    expect(line.endsWith('\n')).toBe(true);
    expect(parseHeader(line.trimEnd())).toEqual({ ok: true, header });
    expect(parseHeader('nope').ok).toBe(false);
    expect(parseHeader(JSON.stringify({ ...header, driver: 'dir' })).ok).toBe(false);
    expect(parseHeader(JSON.stringify({ ...header, guid: '' })).ok).toBe(false);
    expect(parseHeader(JSON.stringify({ ...header, base: 5 })).ok).toBe(false);
    const sha256 = 'a'.repeat(64);
    const btrfs = { ...header, driver: 'btrfs' as const, sha256 };
    expect(parseHeader(JSON.stringify(btrfs))).toEqual({ ok: true, header: btrfs });
    expect(parseHeader(JSON.stringify({ ...btrfs, sha256: undefined })).ok).toBe(false);
    expect(parseHeader(JSON.stringify({ ...btrfs, sha256: 'xyz' })).ok).toBe(false);
    expect(parseHeader(JSON.stringify({ ...header, sha256 })).ok).toBe(false);
  });

  it('admits a token once, from the source, for the slot it names', () => {
    const slots = new Map([['t1', slot]]);
    expect(admit(slots, header, '10.210.0.1', 500).ok).toBe(true);
    expect(admit(slots, header, '10.210.0.1', 500)).toEqual({ ok: false, reason: 'unknown or used token' });
    expect(admit(new Map([['t1', slot]]), header, '10.210.0.9', 500).ok).toBe(false);
    expect(admit(new Map([['t1', slot]]), header, '10.210.0.1', 2000)).toMatchObject({
      ok: false,
      reason: 'token expired',
    });
    expect(admit(new Map([['t1', slot]]), { ...header, guid: '999' }, '10.210.0.1', 500).ok).toBe(false);
    expect(admit(new Map([['t1', slot]]), { ...header, base: 'd0' }, '10.210.0.1', 500).ok).toBe(false);
    expect(admit(new Map([['t1', slot]]), { ...header, driver: 'btrfs' }, '10.210.0.1', 500).ok).toBe(false);
  });
});
