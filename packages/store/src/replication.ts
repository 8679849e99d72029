/**
 * Replication of the store's assets as JetStream reports it (issue 19 item 5: `ployzctl status`
 * shows the stream leader and each asset's replicas, current or lagging). Read only: one
 * `STREAM.INFO` per asset.
 */
import { jetstreamManager, type StreamInfo } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Scope } from './keys.ts';
import { migrationAssets } from './migrate.ts';

export interface AssetReplication {
  asset: string;
  replicas: number;
  /** The server leading its raft group (a standalone server: itself). */
  leader: string | null;
  /** Servers whose copy is current (the leader included). */
  current: string[];
  /** Followers behind: how many operations and when last seen. */
  lagging: { server: string; lag: number; active_ms: number }[];
}

export interface StoreReplication {
  /** The highest replica count among the assets (they move together). */
  replicas: number;
  /** The commits stream's leader: where deploy writes go. */
  leader: string | null;
  assets: AssetReplication[];
}

/** Pure: one asset's view from its stream info. */
export function assetReplication(
  asset: string,
  info: Pick<StreamInfo, 'config' | 'cluster'>,
): AssetReplication {
  const leader = info.cluster?.leader ?? null;
  const peers = info.cluster?.replicas ?? [];
  return {
    asset,
    replicas: info.config.num_replicas,
    leader,
    current: [
      ...(leader ? [leader] : []),
      ...peers.filter((p) => p.current && !p.offline).map((p) => p.name),
    ],
    lagging: peers
      .filter((p) => !p.current || p.offline)
      .map((p) => ({ server: p.name, lag: p.lag ?? 0, active_ms: Math.round((p.active ?? 0) / 1e6) })),
  };
}

export async function storeReplication(nc: NatsConnection, scope: Scope): Promise<StoreReplication> {
  const jsm = await jetstreamManager(nc);
  const assets: AssetReplication[] = [];
  for (const ref of migrationAssets(scope)) {
    assets.push(assetReplication(ref.asset, await jsm.streams.info(ref.stream)));
  }
  return {
    replicas: Math.max(1, ...assets.map((a) => a.replicas)),
    leader: assets[0]?.leader ?? null,
    assets,
  };
}
