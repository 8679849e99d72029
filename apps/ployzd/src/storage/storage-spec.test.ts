import { describe, expect, it } from 'vitest';
import { parseStorageSpec, volumeDriver } from './storage-spec.ts';

describe('parseStorageSpec', () => {
  it('reads zfs:<pool>, btrfs:<path> and dir:<path>', () => {
    expect(parseStorageSpec('zfs:tank')).toEqual({ kind: 'zfs', pool: 'tank', root: 'tank/ployz' });
    expect(parseStorageSpec('btrfs:/var/lib/ployz/btrfs/')).toEqual({
      kind: 'btrfs',
      root: '/var/lib/ployz/btrfs',
    });
    expect(parseStorageSpec('dir:/var/lib/ployz/volumes')).toEqual({
      kind: 'dir',
      root: '/var/lib/ployz/volumes',
    });
  });

  it('refuses anything else with STORAGE_INVALID naming the accepted forms', () => {
    for (const bad of [
      'zfs',
      'zfs:',
      'zfs:-o',
      'zfs:tank/x y',
      'btrfs:relative',
      'dir:/a/../b',
      'lvm:/x',
      '',
    ]) {
      expect(() => parseStorageSpec(bad), bad).toThrow(/zfs:<pool>, btrfs:<path> or dir:<path>/);
    }
  });

  it('gives the driver of its kind', () => {
    expect(volumeDriver(parseStorageSpec('zfs:tank')).kind).toBe('zfs');
    expect(volumeDriver(parseStorageSpec('btrfs:/b')).kind).toBe('btrfs');
    expect(volumeDriver(parseStorageSpec('dir:/d')).kind).toBe('dir');
  });
});
