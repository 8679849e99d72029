/**
 * WireGuard key pairs and machine records for the mesh tests: X25519 from node:crypto, base64 as
 * `wg genkey` / `wg pubkey` print them, and a MachineRecord around each public key.
 */
import { generateKeyPairSync } from 'node:crypto';
import { MachineRecord } from '@ployz/types';

export interface WireguardKeys {
  privateKey: string;
  publicKey: string;
}

export function wireguardKeys(): WireguardKeys {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  // The raw 32-byte keys are the tails of their DER encodings.
  const raw = (der: Buffer) => der.subarray(der.length - 32).toString('base64');
  return {
    privateKey: raw(privateKey.export({ format: 'der', type: 'pkcs8' })),
    publicKey: raw(publicKey.export({ format: 'der', type: 'spki' })),
  };
}

export function machineRecord(
  id: string,
  publicKey: string,
  over: Partial<MachineRecord> & Pick<MachineRecord, 'overlay_ip' | 'subnet' | 'endpoints'>,
): MachineRecord {
  return MachineRecord.parse({
    id,
    public_key: publicKey,
    region: 'default',
    region_role: 'home_data',
    lifecycle: 'active',
    created_at: '2026-12-01T00:00:00.000Z',
    updated_at: '2026-12-01T00:00:00.000Z',
    ...over,
  });
}
