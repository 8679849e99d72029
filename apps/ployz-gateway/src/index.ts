export { FileSnapshotFeed, LazyStoreFeed } from '@ployz/routing';
export { type AdminSources, createAdminServer } from './admin.ts';
export { type CertificateLoad, CertificateStore } from './certificates.ts';
export { GatewayConfig, helpText, type ParsedArgs, parseGatewayArgs } from './config.ts';
export { type Gateway, type GatewayDeps, startGateway } from './gateway.ts';
export { GatewayMetrics } from './metrics.ts';
export { type ProxyLimits, type ProxyOptions, ReverseProxy } from './proxy.ts';
