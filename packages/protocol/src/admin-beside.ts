/**
 * An edge app's admin listener when it may start beside the instance it replaces
 * (docs/adr/0014-replace-beside.md): that instance holds the admin port, so this one answers on
 * the alternate port — where ployzd waits for it to be healthy — and takes the admin port as soon
 * as it is free (the old instance drained and exited), closing the alternate one.
 *
 * Also `@ployz/protocol/admin`: no zod, for a process that only supervises (the gateway's
 * primary, apps/ployz-gateway/src/workers.ts).
 */
import type { Server } from 'node:http';

/** What every edge app's admin listener serves; ployzd's Docker healthcheck probes `health`. */
export const ADMIN_PATHS = {
  health: '/_ployz/health',
  status: '/_ployz/status',
  metrics: '/metrics',
} as const;

/** How often a replacement tries the admin port again while it answers on the alternate one. */
export const ADMIN_RETRY_MS = 200;

export interface AdminListener {
  /** The port answering now: the admin port, or the alternate one until that is free. */
  readonly port: number;
  close(): Promise<void>;
}

function listenOn(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Binds `create()` on host:port; with `altPort` set, a taken port falls back to altPort and is
 * retried every ADMIN_RETRY_MS (`onMoved` is told when it moved). Without altPort, or when the
 * alternate port is taken too, the bind error is thrown.
 */
export async function listenAdmin(
  create: () => Server,
  options: { host: string; port: number; altPort: number | null; onMoved?: (port: number) => void },
): Promise<AdminListener> {
  const { host, port, altPort } = options;
  const first = create();
  try {
    await listenOn(first, host, port);
    return { port: (first.address() as { port: number }).port, close: () => closeServer(first) };
  } catch (error) {
    if (altPort === null || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
  }
  const alt = create();
  await listenOn(alt, host, altPort);
  let current = alt;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = () => {
    timer = setTimeout(() => {
      const next = create();
      listenOn(next, host, port).then(
        () => {
          if (closed) return void closeServer(next);
          current = next;
          void closeServer(alt);
          options.onMoved?.(port);
        },
        () => {
          if (!closed) retry();
        },
      );
    }, ADMIN_RETRY_MS);
  };
  retry();
  return {
    get port() {
      return current === alt ? altPort : port;
    },
    close: async () => {
      closed = true;
      clearTimeout(timer);
      await closeServer(current);
    },
  };
}
