import { X509Certificate } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';

export interface CertificateEntry {
  hostname: string;
  context: tls.SecureContext;
  notAfter: string | null;
}

export interface CertificateLoad {
  loaded: string[];
  /** Files that could not be used, with why. */
  failed: { hostname: string; reason: string }[];
}

/**
 * Certificates stored by hostname in one directory: `<hostname>.crt` (PEM chain) and
 * `<hostname>.key` (PEM key); a wildcard is stored as `*.example.com.crt`/`.key`. The directory
 * is watched and reloaded (debounced) on change, so a certificate is replaced without a restart;
 * a pair that fails to load keeps the previous context for that hostname.
 */
export class CertificateStore {
  readonly #dir: string;
  #entries = new Map<string, CertificateEntry>();
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #onReload: ((load: CertificateLoad) => void) | undefined;

  constructor(dir: string, onReload?: (load: CertificateLoad) => void) {
    this.#dir = dir;
    this.#onReload = onReload;
  }

  get size(): number {
    return this.#entries.size;
  }

  hostnames(): string[] {
    return [...this.#entries.keys()].sort();
  }

  async load(): Promise<CertificateLoad> {
    const names = await readdir(this.#dir).catch(() => [] as string[]);
    const next = new Map<string, CertificateEntry>();
    const result: CertificateLoad = { loaded: [], failed: [] };
    for (const file of names) {
      if (!file.endsWith('.crt')) continue;
      const hostname = file.slice(0, -4).toLowerCase();
      try {
        const [cert, key] = await Promise.all([
          readFile(join(this.#dir, file)),
          readFile(join(this.#dir, `${file.slice(0, -4)}.key`)),
        ]);
        const context = tls.createSecureContext({ cert, key });
        let notAfter: string | null = null;
        try {
          notAfter = new X509Certificate(cert).validTo;
        } catch {
          notAfter = null;
        }
        next.set(hostname, { hostname, context, notAfter });
        result.loaded.push(hostname);
      } catch (error) {
        const previous = this.#entries.get(hostname);
        if (previous !== undefined) next.set(hostname, previous);
        result.failed.push({ hostname, reason: (error as Error).message });
      }
    }
    this.#entries = next;
    return result;
  }

  /** Starts watching the directory; reloads 200 ms after the last change. */
  watch(): void {
    if (this.#watcher !== undefined) return;
    try {
      this.#watcher = watch(this.#dir, () => {
        if (this.#debounce !== undefined) clearTimeout(this.#debounce);
        this.#debounce = setTimeout(() => {
          void this.load().then((load) => this.#onReload?.(load));
        }, 200);
      });
      this.#watcher.on('error', () => undefined);
    } catch {
      this.#watcher = undefined;
    }
  }

  close(): void {
    this.#watcher?.close();
    if (this.#debounce !== undefined) clearTimeout(this.#debounce);
  }

  /** Exact hostname, then wildcards from the most specific suffix. */
  lookup(servername: string): tls.SecureContext | undefined {
    const name = servername.toLowerCase().replace(/\.$/, '');
    const exact = this.#entries.get(name);
    if (exact !== undefined) return exact.context;
    let dot = name.indexOf('.');
    while (dot !== -1) {
      const entry = this.#entries.get(`*${name.slice(dot)}`);
      if (entry !== undefined) return entry.context;
      dot = name.indexOf('.', dot + 1);
    }
    return undefined;
  }

  /** For `tls` `SNICallback`: unknown names fail the handshake (no default certificate). */
  sniCallback = (
    servername: string,
    callback: (error: Error | null, context?: tls.SecureContext) => void,
  ): void => {
    const context = this.lookup(servername);
    if (context === undefined) callback(new Error(`no certificate for ${servername}`));
    else callback(null, context);
  };
}
