import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clearJoinPeers, pendingJoinPeers, saveJoinPeers } from '../../src/fleet/join-peers.ts';
import { machineRecord, wireguardKeys } from '../mesh/keys.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('join peers kept until the store holds them', () => {
  it('round-trips the records (0600), is empty when none are pending or after clear, and refuses a corrupt file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ployz-join-peers-'));
    dirs.push(dir);
    expect(await pendingJoinPeers(dir)).toEqual([]);
    const peer = machineRecord('m1', wireguardKeys().publicKey, {
      overlay_ip: 'fd70:6c6f:797a:1::1',
      subnet: '10.210.0.0/24',
      endpoints: ['192.0.2.1:51820'],
    });
    await saveJoinPeers(dir, [peer]);
    expect(await pendingJoinPeers(dir)).toEqual([peer]);
    expect((await stat(join(dir, 'join-peers.json'))).mode & 0o777).toBe(0o600);
    await clearJoinPeers(dir);
    expect(await pendingJoinPeers(dir)).toEqual([]);
    await writeFile(join(dir, 'join-peers.json'), '[{"id": 1}]');
    await expect(pendingJoinPeers(dir)).rejects.toMatchObject({ code: 'STORE_CORRUPT' });
  });
});
