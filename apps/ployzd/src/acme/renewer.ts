/**
 * One renewer per hostname in the whole installation (docs/adr/0015-acme.md): every ployzd runs
 * this loop; for a hostname that is due (renewal.ts) it takes the lease `cp.lock.acme.<host>` and
 * orders a certificate from the installation's ACME directory with `acme-client` (RFC 8555):
 * the HTTP-01 token goes to NATS KV, which every machine writes out for its gateway
 * (gateway-feed.ts); the certificate and its key (sealed like a secret env value, ADR 0002) go
 * back to KV. A failure is recorded on the hostname's renewal record with the next attempt after
 * a backoff, which `ployzctl cert ls` and `status` show; the stored certificate keeps serving.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { escapeToken, type InstallationKey } from '@ployz/identity';
import type { Lease, Store } from '@ployz/store';
import { PloyzError } from '@ployz/types';
import * as acme from 'acme-client';
import type { Logger } from 'pino';
import type { AcmeBuckets } from './buckets.ts';
import {
  ACME_ACCOUNT_KEY_NAME,
  type AcmeCertificateRecord,
  type AcmeRenewalRecord,
  acmeKeyName,
} from './records.ts';
import { type Backoff, backoffMs, renewalDecision } from './schedule.ts';

export interface AcmeRenewerOptions {
  store: Store;
  buckets: AcmeBuckets;
  key: InstallationKey;
  /** This machine (lease owner, `renewer` on the renewal record). */
  machineId: string;
  directoryUrl: string;
  /** PEM of a CA trusted for the directory's own HTTPS (a test directory), beside the system's. */
  directoryCaFile?: string;
  email?: string;
  /** The hostnames that ask for a certificate now (committed routes with `tls = "auto"`). */
  hostnames(): Promise<string[]>;
  logger: Logger;
  /** A pass over every hostname this often. */
  intervalMs?: number;
  backoff?: Backoff;
  /** Written challenge → told to the directory after this long (every gateway has it by then). */
  propagationMs?: number;
  leaseTtlMs?: number;
  /**
   * acme-client retries a request that failed (unreachable, 5xx, 429) this many times, waiting
   * `retryDelaySeconds` × the attempt number unless told Retry-After (its defaults: 5 and 5 s).
   */
  requestRetries?: { attempts: number; delaySeconds: number };
  now?: () => Date;
}

interface AcmeClientSettings {
  retryMaxAttempts: number;
  retryDefaultDelay: number;
}

const DEFAULT_BACKOFF: Backoff = { minMs: 30_000, maxMs: 60 * 60_000 };

export class AcmeRenewer {
  readonly #o: AcmeRenewerOptions;
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #agent: https.Agent | undefined;

  constructor(options: AcmeRenewerOptions) {
    this.#o = options;
    this.#now = options.now ?? (() => new Date());
  }

  start(): void {
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.pass()
        .catch((error: unknown) => this.#o.logger.warn({ err: error }, 'acme pass failed'))
        .finally(() => {
          this.#running = undefined;
          if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs ?? 30_000);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }

  /** One pass: every hostname that is due and whose lease this machine gets. */
  async pass(): Promise<void> {
    for (const hostname of await this.#o.hostnames()) {
      if (this.#stopped) return;
      await this.#consider(hostname);
    }
  }

  async #consider(hostname: string): Promise<void> {
    const { buckets } = this.#o;
    const [cert, renewal] = await Promise.all([
      buckets.certificates.get(hostname),
      buckets.renewals.get(hostname),
    ]);
    if (!renewalDecision(this.#now(), cert?.value ?? null, renewal?.value ?? null).due) return;
    let lease: Lease;
    try {
      lease = await this.#o.store.leases.acquire(`cp.lock.acme.${escapeToken(hostname)}`, {
        owner: this.#o.machineId,
        purpose: 'acme',
        ttlMs: this.#o.leaseTtlMs ?? 5 * 60_000,
      });
    } catch (error) {
      if (error instanceof PloyzError && error.code === 'DEPLOY_LOCK_HELD') {
        // Another machine is ordering it now (at most one line a pass while its order runs).
        this.#o.logger.info(
          { hostname, holder: error.details?.holder },
          'certificate order held by another renewer',
        );
        return;
      }
      throw error;
    }
    try {
      // Another renewer may have finished between our read and our lease: decide again.
      const [certNow, renewalNow] = await Promise.all([
        buckets.certificates.get(hostname),
        buckets.renewals.get(hostname),
      ]);
      const decision = renewalDecision(this.#now(), certNow?.value ?? null, renewalNow?.value ?? null);
      if (!decision.due) return;
      this.#o.logger.info({ hostname, why: decision.why }, 'ordering a certificate');
      await this.#record(hostname, (r) => ({ ...r, state: r.state === 'valid' ? 'valid' : 'pending' }));
      try {
        const issued = await this.#issue(hostname);
        await buckets.certificates.save(issued, certNow?.revision ?? null);
        await this.#record(hostname, () => ({
          hostname,
          state: 'valid',
          failures: 0,
          last_error: null,
          last_attempt_at: this.#now().toISOString(),
          next_attempt_at: null,
          renewer: this.#o.machineId,
        }));
        this.#o.logger.info(
          { hostname, serial: issued.serial, not_after: issued.not_after },
          'certificate issued',
        );
      } catch (error) {
        const message = (error as Error).message;
        let next = '';
        await this.#record(hostname, (r) => {
          const failures = r.failures + 1;
          next = new Date(
            this.#now().getTime() + backoffMs(failures, this.#o.backoff ?? DEFAULT_BACKOFF),
          ).toISOString();
          return {
            ...r,
            state: 'failing',
            failures,
            last_error: { code: 'ACME_ORDER_FAILED', message },
            last_attempt_at: this.#now().toISOString(),
            next_attempt_at: next,
          };
        });
        this.#o.logger.warn({ hostname, err: error, next_attempt_at: next }, 'certificate order failed');
      }
    } finally {
      await this.#o.store.leases.release(lease).catch(() => undefined);
    }
  }

  async #record(hostname: string, change: (r: AcmeRenewalRecord) => AcmeRenewalRecord): Promise<void> {
    await this.#o.buckets.renewals.modify([hostname], (current) =>
      change(
        current ?? {
          hostname,
          state: 'pending',
          failures: 0,
          last_error: null,
          last_attempt_at: null,
          next_attempt_at: null,
          renewer: this.#o.machineId,
        },
      ),
    );
  }

  async #issue(hostname: string): Promise<AcmeCertificateRecord> {
    await this.#configureClient();
    const client = await this.#client();
    const [key, csr] = await acme.crypto.createCsr({ commonName: hostname, altNames: [hostname] });
    const { challenges } = this.#o.buckets;
    const written: string[] = [];
    let pem: string;
    try {
      pem = await client.auto({
        csr,
        termsOfServiceAgreed: true,
        challengePriority: ['http-01'],
        // The directory checks the gateways; a self-check from here would need the public DNS.
        skipChallengeVerification: true,
        challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
          if (challenge.type !== 'http-01') throw new Error(`challenge ${challenge.type} is not served`);
          await challenges.save(
            {
              token: challenge.token,
              key_authorization: keyAuthorization,
              hostname,
              created_at: this.#now().toISOString(),
            },
            null,
          );
          written.push(challenge.token);
          await new Promise((r) => setTimeout(r, this.#o.propagationMs ?? 2_000));
        },
        challengeRemoveFn: async (_authz, challenge) => {
          await challenges.discard([challenge.token]);
        },
      });
    } catch (cause) {
      throw new PloyzError('ACME_ORDER_FAILED', `${hostname}: ${(cause as Error).message}`, {
        cause,
        details: { hostname, directory_url: this.#o.directoryUrl },
      });
    } finally {
      for (const token of written) await challenges.discard([token]).catch(() => undefined);
    }
    const leaf = new X509Certificate(pem);
    return {
      hostname,
      cert_pem: pem,
      key: this.#o.key.sealEnv(acmeKeyName(hostname), key.toString()),
      serial: leaf.serialNumber,
      not_before: new Date(leaf.validFrom).toISOString(),
      not_after: new Date(leaf.validTo).toISOString(),
      issued_at: this.#now().toISOString(),
      directory_url: this.#o.directoryUrl,
    };
  }

  /**
   * A client on the installation's account at this directory: its key created once and sealed in
   * KV, registered once (its URL stored beside), so a later order never re-registers it.
   */
  async #client(): Promise<acme.Client> {
    const { accounts } = this.#o.buckets;
    const url = this.#o.directoryUrl;
    let stored = await accounts.get(url);
    if (stored === null) {
      const pem = (await acme.crypto.createPrivateKey()).toString();
      try {
        stored = await accounts.create({
          directory_url: url,
          key: this.#o.key.sealEnv(ACME_ACCOUNT_KEY_NAME, pem),
          url: null,
          created_at: this.#now().toISOString(),
        });
      } catch (error) {
        // Another machine created it first: use theirs.
        stored = await accounts.get(url);
        if (stored === null) throw error;
      }
    }
    const accountKey = this.#o.key.openEnv(ACME_ACCOUNT_KEY_NAME, stored.value.key);
    const options = { directoryUrl: url, accountKey, backoffAttempts: 5 };
    if (stored.value.url !== null) return new acme.Client({ ...options, accountUrl: stored.value.url });
    const client = new acme.Client(options);
    await client.createAccount({
      termsOfServiceAgreed: true,
      ...(this.#o.email === undefined ? {} : { contact: [`mailto:${this.#o.email}`] }),
    });
    const registered = { ...stored.value, url: client.getAccountUrl() };
    await accounts.save(registered, stored.revision).catch(() => undefined);
    return client;
  }

  async #configureClient(): Promise<void> {
    const retries = this.#o.requestRetries;
    // acme-client's own axios settings (src/axios.js), not in its type declarations.
    const settings = (acme.axios.defaults as { acmeSettings?: AcmeClientSettings }).acmeSettings;
    if (retries !== undefined && settings !== undefined) {
      settings.retryMaxAttempts = retries.attempts;
      settings.retryDefaultDelay = retries.delaySeconds;
    }
    if (this.#o.directoryCaFile === undefined || this.#agent !== undefined) return;
    const ca = await readFile(this.#o.directoryCaFile, 'utf8');
    // acme-client sends every request through its axios instance: trust that CA there only.
    this.#agent = new https.Agent({ ca: [...rootCertificates, ca] });
    acme.axios.defaults.httpsAgent = this.#agent;
  }
}
