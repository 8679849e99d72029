/**
 * ployz-dns as a library, for tests and benchmarks. The binary is src/main.ts.
 * Public surface: `startDnsService` (follower + DNS listeners + forwarder + admin), the config
 * parser, the answer table (`compileAnswers`, `lookup`) and the pure per-packet `respond`.
 */
export { type AnswerTable, compileAnswers, lookup, RECORD_TTL } from './answers.ts';
export { type CliAction, type DnsConfig, HELP, type HostPort, parseCli, parseHostPort } from './config.ts';
export { Forwarder, parseResolvConf, type Upstream } from './forwarder.ts';
export { type Outcome, respond } from './respond.ts';
export { type DnsService, type DnsServiceOptions, type DnsStatus, startDnsService } from './service.ts';
export { parseQuery, type QueryParse } from './wire.ts';
