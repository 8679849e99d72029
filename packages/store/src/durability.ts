/**
 * Server-side JetStream settings for durable acknowledgements (docs/adr/0003). nats-server
 * 2.9 writes each message to the page cache before acking (survives kill -9) but has no fsync
 * option; from 2.10 `sync_interval: always` fsyncs before the ack. Emitting that option to a
 * 2.9 server makes it refuse to start, so the choice depends on the version.
 */
export interface DurabilitySettings {
  /** Put into the `jetstream { … }` block of nats-server.conf when set. */
  sync_interval?: 'always';
  /** What the operator should know when a power loss can still lose acked writes. */
  caveat: string | null;
}

export function parseServerVersion(version: string): [number, number, number] | null {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

export function durabilitySettings(serverVersion: string, replicas: number): DurabilitySettings {
  const v = parseServerVersion(serverVersion);
  const atLeast210 = v !== null && (v[0] > 2 || (v[0] === 2 && v[1] >= 10));
  if (atLeast210) return { sync_interval: 'always', caveat: null };
  return {
    caveat:
      replicas >= 3
        ? null
        : `nats-server ${serverVersion} cannot fsync per write: acknowledged commits survive a nats-server crash but not a power loss of this machine; use replicas 3 (three machines) or nats-server >= 2.10`,
  };
}
