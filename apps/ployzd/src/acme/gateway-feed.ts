/**
 * This machine's gateway's view of the ACME buckets (docs/adr/0015-acme.md): the challenges in
 * flight as `<dir>/challenges/<token>` and the issued certificates as `<dir>/certs/<host>.crt`
 * with the key opened into `<host>.key`, in the directory the gateway reads with `--acme-dir`
 * (apps/ployz-gateway/src/acme.ts). Polled and written atomically (key first, then chain); what
 * KV no longer holds is removed. The gateway never sees the installation key.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { InstallationKey } from '@ployz/identity';
import type { Logger } from 'pino';
import { writeAtomic } from '../machine/atomic-write.ts';
import type { AcmeBuckets } from './buckets.ts';
import { acmeKeyName } from './records.ts';

/** The feed's directory on the host (bind-mounted read-only into ployz-gateway). */
export function acmeFeedDir(stateDir: string): string {
  return join(stateDir, 'acme');
}

/**
 * The feed's two subdirectories, made before the gateway starts: ployz-gateway watches them from
 * its start and does not watch one that appears later (a joined machine's gateway runs before its
 * feed does).
 */
export async function makeAcmeFeedDirs(dir: string): Promise<void> {
  for (const sub of ['certs', 'challenges']) await mkdir(join(dir, sub), { recursive: true, mode: 0o755 });
}

/** The uid the ployz/gateway image runs as (`ployz`, images/base/Dockerfile): owner of the keys. */
export const GATEWAY_UID = 10001;

const HOSTNAME = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;

export interface AcmeGatewayFeedOptions {
  dir: string;
  buckets: AcmeBuckets;
  key: InstallationKey;
  logger: Logger;
  intervalMs?: number;
  /** Owner of the written files (the gateway's user), when not this process's. */
  uid?: number;
}

export class AcmeGatewayFeed {
  readonly #o: AcmeGatewayFeedOptions;
  /** hostname → serial written. */
  readonly #written = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  #lastError = '';

  constructor(options: AcmeGatewayFeedOptions) {
    this.#o = options;
  }

  get certDir(): string {
    return join(this.#o.dir, 'certs');
  }
  get challengeDir(): string {
    return join(this.#o.dir, 'challenges');
  }

  async start(): Promise<void> {
    await makeAcmeFeedDirs(this.#o.dir);
    this.#stopped = false;
    const loop = () => {
      if (this.#stopped) return;
      this.#running = this.sync()
        .then(
          () => {
            this.#lastError = '';
          },
          (error: unknown) => {
            const message = (error as Error).message;
            if (message !== this.#lastError) this.#o.logger.warn({ err: error }, 'acme gateway feed failed');
            this.#lastError = message;
          },
        )
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(loop, this.#o.intervalMs ?? 250);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    await this.#running;
  }

  /** Writes what changed in KV since the last call. */
  async sync(): Promise<void> {
    const { buckets } = this.#o;
    const [challenges, certs] = await Promise.all([buckets.challenges.list(), buckets.certificates.list()]);
    const tokens = new Set<string>();
    for (const { value } of challenges) {
      if (!TOKEN.test(value.token)) continue;
      tokens.add(value.token);
      await writeAtomic(join(this.challengeDir, value.token), value.key_authorization, 0o644, this.#o.uid);
    }
    for (const name of await readdir(this.challengeDir)) {
      if (TOKEN.test(name) && !tokens.has(name)) await rm(join(this.challengeDir, name), { force: true });
    }
    const hosts = new Set<string>();
    for (const { value } of certs) {
      if (!HOSTNAME.test(value.hostname)) continue;
      hosts.add(value.hostname);
      if (this.#written.get(value.hostname) === value.serial) continue;
      const keyPem = this.#o.key.openEnv(acmeKeyName(value.hostname), value.key);
      const base = join(this.certDir, value.hostname);
      await writeAtomic(`${base}.key`, keyPem, 0o600, this.#o.uid);
      await writeAtomic(`${base}.crt`, value.cert_pem, 0o644, this.#o.uid);
      this.#written.set(value.hostname, value.serial);
      this.#o.logger.info(
        { hostname: value.hostname, serial: value.serial },
        'certificate handed to the gateway',
      );
    }
    for (const name of await readdir(this.certDir)) {
      const host = name.replace(/\.(crt|key)$/, '');
      if (host !== name && HOSTNAME.test(host) && !hosts.has(host)) {
        await rm(join(this.certDir, name), { force: true });
        this.#written.delete(host);
      }
    }
  }
}
