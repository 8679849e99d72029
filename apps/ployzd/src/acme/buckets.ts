/**
 * The renewer's KV buckets (records.ts): `acme_<kind>_<installation>`, store assets (@ployz/store
 * `assetNames`) created with the others at the installation's replica count, carried by a
 * promotion.
 */
import { createHash } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { escapeToken } from '@ployz/identity';
import { assetNames, RecordBucket, type Scope, type Store } from '@ployz/store';
import {
  AcmeAccountRecord,
  AcmeCertificateRecord,
  AcmeChallengeRecord,
  AcmeRenewalRecord,
} from './records.ts';

export interface AcmeBuckets {
  certificates: RecordBucket<typeof AcmeCertificateRecord, [hostname: string]>;
  challenges: RecordBucket<typeof AcmeChallengeRecord, [token: string]>;
  renewals: RecordBucket<typeof AcmeRenewalRecord, [hostname: string]>;
  accounts: RecordBucket<typeof AcmeAccountRecord, [directoryUrl: string]>;
}

export function acmeBucketNames(scope: Scope) {
  const names = assetNames(scope);
  return {
    certificates: names.acmeCerts,
    challenges: names.acmeChallenges,
    renewals: names.acmeRenewals,
    accounts: names.acmeAccounts,
  } as const;
}

const hostKey = (hostname: string) => escapeToken(hostname);
const directoryKey = (url: string) => createHash('sha256').update(url).digest('hex').slice(0, 32);

export async function openAcmeBuckets(store: Store): Promise<AcmeBuckets> {
  const names = acmeBucketNames(store.scope);
  const kvm = new Kvm(store.nc);
  const [certs, challenges, renewals, accounts] = await Promise.all([
    kvm.create(names.certificates, { history: 1 }),
    kvm.create(names.challenges, { history: 1 }),
    kvm.create(names.renewals, { history: 1 }),
    kvm.create(names.accounts, { history: 1 }),
  ]);
  return {
    certificates: new RecordBucket({
      bucket: names.certificates,
      kv: certs,
      schema: AcmeCertificateRecord,
      keyOfParts: hostKey,
      keyOfRecord: (r) => hostKey(r.hostname),
    }),
    challenges: new RecordBucket({
      bucket: names.challenges,
      kv: challenges,
      schema: AcmeChallengeRecord,
      keyOfParts: (token) => token,
      keyOfRecord: (r) => r.token,
    }),
    renewals: new RecordBucket({
      bucket: names.renewals,
      kv: renewals,
      schema: AcmeRenewalRecord,
      keyOfParts: hostKey,
      keyOfRecord: (r) => hostKey(r.hostname),
    }),
    accounts: new RecordBucket({
      bucket: names.accounts,
      kv: accounts,
      schema: AcmeAccountRecord,
      keyOfParts: directoryKey,
      keyOfRecord: (r) => directoryKey(r.directory_url),
    }),
  };
}
