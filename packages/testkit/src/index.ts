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
export { freePort, type NatsOptions, type NatsServer, startNats, waitForPort } from './nats.ts';
export {
  createNetnsHost,
  type ExecOptions,
  type ExecResult,
  type NetnsDockerd,
  type NetnsHost,
} from './netns.ts';
