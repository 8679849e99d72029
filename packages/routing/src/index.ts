export {
  DNS_ZONE,
  type DnsNameRecords,
  type DnsSrvRecord,
  type DnsView,
  projectDns,
} from './dns-projection.ts';
export { FileSnapshotFeed, LazyStoreFeed, type LazyStoreFeedOptions, seedFromFile } from './feeds.ts';
export {
  createFollower,
  type Follower,
  type FollowerOptions,
  type Freshness,
  type IncrementalProjection,
} from './follower.ts';
export { IncrementalRoutes } from './incremental-routes.ts';
export { MemoryRoutingFeed } from './memory-feed.ts';
export { isRoutable, type UnroutableReason, unroutableReason } from './routable.ts';
export { matchRoute, normalizeRequestHost, pathMatches } from './route-match.ts';
export { type HttpRouteView, httpRoutesOf, normalizeHostname, normalizePathPrefix } from './route-spec.ts';
export {
  assembleRoutes,
  type Backend,
  EMPTY_ROUTE_TABLE,
  projectRoutes,
  type ReleaseRoutes,
  type Route,
  type RouteConflict,
  type RouteTable,
  releaseRoutes,
} from './route-table.ts';
export { ProjectionState, type RoutingState, serviceKey } from './state.ts';
