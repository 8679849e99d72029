/**
 * What ployzd's ACME renewer feeds this gateway (docs/adr/0015-acme.md), in one directory:
 * `certs/<hostname>.crt|.key` — issued certificates, opened keys, served by SNI after the imported
 * ones (`--cert-dir`) — and `challenges/<token>` — the HTTP-01 key authorization answered on
 * `/.well-known/acme-challenge/<token>` over plain HTTP. ployzd writes both from NATS KV on every
 * machine; both are watched, so a renewed certificate takes the next handshake and open
 * connections keep theirs.
 */
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type tls from 'node:tls';
import { type CertificateLoad, CertificateStore } from './certificates.ts';
import type { EdgeAnswers } from './proxy/resolve.ts';

/** An RFC 8555 token is base64url; anything else is never looked up. */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
/** A key authorization is `<token>.<thumbprint>`: far below this. */
const MAX_ANSWER_BYTES = 1024;
const CHALLENGE_RELOAD_MS = 20;

export class AcmeFeed implements EdgeAnswers {
  readonly certificates: CertificateStore;
  readonly #challengeDir: string;
  #challenges = new Map<string, string>();
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;

  constructor(dir: string, onReload?: (load: CertificateLoad) => void) {
    this.certificates = new CertificateStore(join(dir, 'certs'), onReload);
    this.#challengeDir = join(dir, 'challenges');
  }

  async load(): Promise<CertificateLoad> {
    await this.#loadChallenges();
    return this.certificates.load();
  }

  watch(): void {
    this.certificates.watch();
    if (this.#watcher !== undefined) return;
    try {
      this.#watcher = watch(this.#challengeDir, () => {
        if (this.#debounce !== undefined) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => void this.#loadChallenges(), CHALLENGE_RELOAD_MS);
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      this.#watcher = undefined;
    }
  }

  close(): void {
    this.certificates.close();
    this.#watcher?.close();
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
  }

  challenge(token: string): string | undefined {
    return TOKEN.test(token) ? this.#challenges.get(token) : undefined;
  }

  get challengeCount(): number {
    return this.#challenges.size;
  }

  async #loadChallenges(): Promise<void> {
    const names = await readdir(this.#challengeDir).catch(() => [] as string[]);
    const next = new Map<string, string>();
    for (const name of names) {
      if (!TOKEN.test(name)) continue;
      const text = await readFile(join(this.#challengeDir, name), 'utf8').catch(() => undefined);
      if (text === undefined || Buffer.byteLength(text) > MAX_ANSWER_BYTES) continue;
      next.set(name, text.trim());
    }
    this.#challenges = next;
  }
}

type SniDone = (error: Error | null, context?: tls.SecureContext) => void;

/**
 * `SNICallback` over the imported certificates first (an operator's import wins), then the ACME
 * ones. A live lookup per handshake: a reloaded store serves its new context from the next one.
 */
export function sniOver(stores: readonly CertificateStore[]): (servername: string, done: SniDone) => void {
  return (servername, done) => {
    for (const store of stores) {
      const context = store.lookup(servername);
      if (context !== undefined) {
        done(null, context);
        return;
      }
    }
    done(new Error(`no certificate for ${servername}`));
  };
}
