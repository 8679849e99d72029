/**
 * Automatic HTTPS as a daemon plugin (docs/adr/0015-acme.md): at start, this machine's gateway
 * feed (gateway-feed.ts: certificates and HTTP-01 answers from NATS KV into the directory
 * ployz-gateway reads) and, unless `--acme-directory off`, the renewer (renewer.ts: one per
 * hostname in the installation, under a lease). It serves the `certList` and `certShow` routes
 * of the local API and the renewal part of `status`.
 */
import type { CertificatesStatus, CertificateView } from '@ployz/protocol';
import type { Store } from '@ployz/store';
import { PloyzError } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/context.ts';
import { loadInstallationKey } from '../deploy/plugin.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { type AcmeBuckets, openAcmeBuckets } from './buckets.ts';
import { AcmeGatewayFeed, acmeFeedDir, GATEWAY_UID } from './gateway-feed.ts';
import { AcmeRenewer } from './renewer.ts';
import { tlsAutoHostnames } from './schedule.ts';
import { certificatesStatus, certificateViews } from './views.ts';

/** The wanted hostnames are read again after this long (status is polled; a snapshot is not free). */
const WANTED_TTL_MS = 2_000;
/** `status` does not wait longer than this for the renewal records. */
const STATUS_READ_MS = 2_000;

export function acmePlugin(): DaemonPlugin {
  let store: Store | null = null;
  let buckets: AcmeBuckets | null = null;
  let feed: AcmeGatewayFeed | null = null;
  let renewer: AcmeRenewer | null = null;
  let directoryUrl: string | null = null;
  let wanted: { at: number; hosts: Promise<string[]> } | null = null;

  const ready = () => {
    if (store === null || buckets === null)
      throw new PloyzError(
        'ENGINE_NOT_READY',
        'ployzd is not connected to its store yet (machine not initialised or NATS not connected); see ployzctl status',
      );
    return { store, buckets };
  };

  /** The `tls = "auto"` hostnames of the committed releases (what the renewer works on). */
  const wantedHosts = (fresh = false): Promise<string[]> => {
    const { store: s } = ready();
    if (fresh || wanted === null || Date.now() - wanted.at > WANTED_TTL_MS) {
      const hosts = s.routing.snapshot().then(tlsAutoHostnames);
      wanted = { at: Date.now(), hosts };
      hosts.catch(() => {
        if (wanted?.hosts === hosts) wanted = null;
      });
    }
    return wanted.hosts;
  };

  const views = async (): Promise<CertificateView[]> => {
    const { buckets: b } = ready();
    const [hosts, certs, renewals] = await Promise.all([
      wantedHosts(true),
      b.certificates.list(),
      b.renewals.list(),
    ]);
    return certificateViews(
      hosts,
      certs.map((c) => c.value),
      renewals.map((r) => r.value),
    );
  };

  return {
    name: 'acme',
    register(ctx: DaemonContext) {
      ctx.implement('certList', async () => ({ directory_url: directoryUrl, certificates: await views() }));
      ctx.implement('certShow', async (q) => {
        const hostname = q.hostname.toLowerCase().replace(/\.$/, '');
        const all = await views();
        const view = all.find((v) => v.hostname === hostname);
        if (view === undefined) {
          const known = all.map((v) => v.hostname);
          throw new PloyzError(
            'CERT_UNKNOWN',
            `no route with tls = "auto" asks for ${hostname} and no certificate is stored for it; known: ${known.join(', ') || 'none'} (ployzctl cert ls)`,
            { details: { hostname, known } },
          );
        }
        return view;
      });
    },

    async start(ctx: DaemonContext, machine: MachineIdentity) {
      const log = ctx.logger.child({ plugin: 'acme' });
      const s = ctx.store();
      const b = await openAcmeBuckets(s);
      const key = await loadInstallationKey(ctx.config.stateDir);
      store = s;
      buckets = b;
      // Keys are 0600 for the gateway's user; a ployzd that is not root (tests) keeps them its own.
      const uid = process.getuid?.() === 0 ? GATEWAY_UID : undefined;
      feed = new AcmeGatewayFeed({
        dir: acmeFeedDir(ctx.config.stateDir),
        buckets: b,
        key,
        logger: log,
        ...(uid === undefined ? {} : { uid }),
      });
      await feed.start();
      const c = ctx.config;
      directoryUrl = c.acmeDirectory;
      if (c.acmeDirectory === null) {
        log.info({}, 'acme renewer off (--acme-directory off); stored certificates still reach the gateway');
        return;
      }
      renewer = new AcmeRenewer({
        store: s,
        buckets: b,
        key,
        machineId: machine.machine_id,
        directoryUrl: c.acmeDirectory,
        ...(c.acmeCaFile === undefined ? {} : { directoryCaFile: c.acmeCaFile }),
        ...(c.acmeEmail === undefined ? {} : { email: c.acmeEmail }),
        hostnames: () => wantedHosts(true),
        logger: log,
        intervalMs: c.acmeIntervalMs,
        requestRetries: { attempts: c.acmeRequestRetries, delaySeconds: 5 },
      });
      renewer.start();
      log.info({ directory_url: c.acmeDirectory, interval_ms: c.acmeIntervalMs }, 'acme renewer started');
    },

    async certificates(): Promise<CertificatesStatus> {
      const { buckets: b } = ready();
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the store did not answer within 2 s')), STATUS_READ_MS);
      });
      try {
        const [hosts, certs, renewals] = await Promise.race([
          Promise.all([wantedHosts(), b.certificates.list(), b.renewals.list()]),
          timeout,
        ]);
        return certificatesStatus(
          directoryUrl,
          certificateViews(
            hosts,
            certs.map((c) => c.value),
            renewals.map((r) => r.value),
          ),
        );
      } finally {
        clearTimeout(timer);
      }
    },

    async stop() {
      await renewer?.stop();
      await feed?.stop();
      renewer = null;
      feed = null;
      store = null;
      buckets = null;
      wanted = null;
    },
  };
}
