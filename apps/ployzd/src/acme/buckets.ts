/** The renewer's KV buckets (records.ts), created on first use: `acme_<kind>_<installation>`. */
import { createHash } from 'node:crypto';
import { Kvm } from '@nats-io/kv';
import { escapeToken } from '@ployz/identity';
import { RecordBucket, type Store } from '@ployz/store';
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

export function acmeBucketNames(installation: string) {
  return {
    certificates: `acme_certs_${installation}`,
    challenges: `acme_challenges_${installation}`,
    renewals: `acme_renewals_${installation}`,
    accounts: `acme_accounts_${installation}`,
  } as const;
}

const hostKey = (hostname: string) => escapeToken(hostname);
const directoryKey = (url: string) => createHash('sha256').update(url).digest('hex').slice(0, 32);

export async function openAcmeBuckets(store: Store): Promise<AcmeBuckets> {
  const names = acmeBucketNames(store.scope.installation);
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
