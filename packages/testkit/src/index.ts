export {
  type CleanupReport,
  connectDocker,
  containerOutput,
  DOCKER_API_VERSION,
  type DockerConnectOptions,
  type DockerScope,
  demuxDockerStream,
  dockerClient,
  dockerScope,
  removeByLabel,
  requireImage,
  sweepOrphans,
  TEST_LABEL,
  TEST_OWNER_PID_LABEL,
  testScopeId,
  waitForDocker,
} from './docker.ts';
export * as fixtures from './fixtures.ts';
export {
  type AppendOutcome,
  type CommitCheck,
  commitViolations,
  type LeaseHold,
  leaseViolations,
  type StoredCommit,
  type Violation,
} from './history.ts';
export {
  freePort,
  type NatsCluster,
  type NatsOptions,
  type NatsServer,
  startNats,
  startNatsCluster,
  waitForPort,
} from './nats.ts';
export {
  createNetnsHost,
  createNetnsLan,
  type ExecOptions,
  type ExecResult,
  type NetnsDockerd,
  type NetnsHost,
  type NetnsHostOptions,
  type NetnsLan,
  sweepNetnsOrphans,
} from './netns.ts';
export { type Pebble, type PebbleOptions, startPebble } from './pebble.ts';
export { httpGet, type Registry, type RegistryOptions, startRegistry } from './registry.ts';
export { type RestartableDockerd, startRestartableDockerd } from './restartable-dockerd.ts';
export {
  type BtrfsLoop,
  createBtrfsLoop,
  createZfsPool,
  type StorageFixtureOptions,
  type ZfsPool,
} from './storage.ts';
export { type Handshake, requestOn, tlsHandshake } from './tls-probe.ts';
