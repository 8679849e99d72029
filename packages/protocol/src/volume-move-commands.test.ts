import { describe, expect, it } from 'vitest';
import { VolumeSnapshotBody } from './volume-commands.ts';
import { VOLUME_MOVE_RPC, volumeMoveCommands } from './volume-move-commands.ts';

const ref = { machine: 'm2', namespace: 'shop', volume: 'data', slot: null, move_id: 'dep-01abc' };
const token = 'A'.repeat(43);

describe('volume move command schemas', () => {
  it('a prepare names the move, the pass and the source machine; nothing else passes', () => {
    const prepare = volumeMoveCommands[VOLUME_MOVE_RPC.prepare].request;
    const ok = { ...ref, snapshot: 'dep-01abc-bulk', base: null, guid: '1234', source_machine: 'm1' };
    expect(prepare.safeParse(ok).success).toBe(true);
    for (const bad of [
      { ...ok, source_machine: undefined },
      { ...ok, move_id: '../x' },
      { ...ok, snapshot: '-rf' },
      { ...ok, guid: '' },
      { ...ok, namespace: 'Shop/..' },
      { ...ok, extra: true },
    ]) {
      expect(prepare.safeParse(bad).success).toBe(false);
    }
  });

  it('a send carries a 32-byte base64url token and the target listener', () => {
    const send = volumeMoveCommands[VOLUME_MOVE_RPC.send].request;
    const ok = {
      ...ref,
      machine: 'm1',
      snapshot: 'dep-01abc-cutover',
      base: 'dep-01abc-bulk',
      token,
      target: { machine: 'm2', address: 'fd8c::2', port: 7480 },
    };
    expect(send.safeParse(ok).success).toBe(true);
    expect(send.safeParse({ ...ok, token: 'short' }).success).toBe(false);
    expect(send.safeParse({ ...ok, token: `${'A'.repeat(42)}=` }).success).toBe(false);
    expect(send.safeParse({ ...ok, target: { ...ok.target, port: 0 } }).success).toBe(false);
  });

  it('the slot answer and the verified pass round-trip', () => {
    const slot = { token, expires_at: new Date(0).toISOString(), address: 'fd8c::2', port: 7480 };
    expect(volumeMoveCommands[VOLUME_MOVE_RPC.prepare].response.parse(slot)).toEqual(slot);
    const result = {
      driver: 'zfs',
      snapshot: 's',
      base: null,
      id: '42',
      bytes: 10,
      sha256: null,
      elapsed_ms: 5,
      bytes_per_second: 2000,
    };
    expect(volumeMoveCommands[VOLUME_MOVE_RPC.send].response.parse(result)).toEqual(result);
  });

  it('snapshots of the two passes are deploy-labelled like the others', () => {
    const body = { machine: 'm1', namespace: 'shop', volumes: [{ volume: 'data', slot: null }] };
    for (const label of ['dep-01abc-bulk', 'dep-01abc-cutover', 'dep-01abc-pre', 'dep-01abc'])
      expect(VolumeSnapshotBody.safeParse({ ...body, label }).success).toBe(true);
    expect(VolumeSnapshotBody.safeParse({ ...body, label: 'dep-01abc-other' }).success).toBe(false);
  });
});
