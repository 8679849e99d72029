/**
 * Registry credentials per installation: one record per registry host in the KV bucket
 * `registry_auth_<installation>` (a store asset, @ployz/store `assetNames`), the password sealed under the installation key like a secret
 * env value (docs/adr/0002-sealed-secrets.md), bound to its host (`registry.password.<host>` is
 * the sealing name, so a box cannot be moved to another host). Every machine of the installation
 * reads them; the one that pulls unseals the password in memory and hands it to its own engine.
 */
import { Kvm } from '@nats-io/kv';
import { escapeToken, type InstallationKey } from '@ployz/identity';
import { assetNames, RecordBucket, type Store } from '@ployz/store';
import { SealedValue, Timestamp } from '@ployz/types';
import { z } from 'zod';

export const RegistryCredentialRecord = z.object({
  host: z.string(),
  username: z.string(),
  /** Sealed under `registryPasswordName(host)`. */
  password: SealedValue,
  updated_at: Timestamp,
  updated_by: z.string(),
});
export type RegistryCredentialRecord = z.infer<typeof RegistryCredentialRecord>;

/** What Docker's engine takes as `X-Registry-Auth` for a pull or `/auth`. */
export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export function registryPasswordName(host: string): string {
  return `registry.password.${host}`;
}

export type RegistryCredentials = RecordBucket<typeof RegistryCredentialRecord, [host: string]>;

export async function openRegistryCredentials(store: Store): Promise<RegistryCredentials> {
  const name = assetNames(store.scope).registryAuth;
  const kv = await new Kvm(store.nc).create(name, { history: 1 });
  return new RecordBucket({
    bucket: name,
    kv,
    schema: RegistryCredentialRecord,
    keyOfParts: (host) => escapeToken(host),
    keyOfRecord: (r) => escapeToken(r.host),
  });
}

export function sealCredential(
  key: InstallationKey,
  input: { host: string; username: string; password: string },
  by: { machine: string; at: string },
): RegistryCredentialRecord {
  return {
    host: input.host,
    username: input.username,
    password: key.sealEnv(registryPasswordName(input.host), input.password),
    updated_at: by.at,
    updated_by: by.machine,
  };
}

export function openCredential(key: InstallationKey, record: RegistryCredentialRecord): RegistryAuth {
  return {
    username: record.username,
    password: key.openEnv(registryPasswordName(record.host), record.password),
    serveraddress: record.host,
  };
}

/** The credentials for `host`, unsealed, or null when the installation holds none. */
export async function authFor(
  credentials: RegistryCredentials,
  key: InstallationKey,
  host: string,
): Promise<RegistryAuth | null> {
  const record = await credentials.get(host);
  return record === null ? null : openCredential(key, record.value);
}
