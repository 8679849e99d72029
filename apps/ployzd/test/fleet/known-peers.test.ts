import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { knownPeers, saveKnownPeers } from '../../src/fleet/known-peers.ts';
import { machineRecord, wireguardKeys } from '../mesh/keys.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('known peers: the records the mesh last applied', () => {
  it('round-trips the records (0600), is empty when none were saved, replaces on save, and refuses a corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployz-known-peers-'));
    dirs.push(dir);
    expect(await knownPeers(dir)).toEqual([]);
    const peer = machineRecord('m1', wireguardKeys().publicKey, {
      overlay_ip: 'fd70:6c6f:797a:1::1',
      subnet: '10.210.0.0/24',
      endpoints: ['192.0.2.1:51820'],
    });
    await saveKnownPeers(dir, [peer]);
    expect(await knownPeers(dir)).toEqual([peer]);
    expect((await stat(join(dir, 'known-peers.json'))).mode & 0o777).toBe(0o600);
    await saveKnownPeers(dir, []);
    expect(await knownPeers(dir)).toEqual([]);
    await writeFile(join(dir, 'known-peers.json'), '[{"id": 1}]');
    await expect(knownPeers(dir)).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  });
});
