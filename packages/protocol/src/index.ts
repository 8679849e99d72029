/**
 * @ployz/protocol — the wire between Ployz processes.
 *
 * Subjects: `commandSubject(scope, machine, command)` = `ployz.v1.<inst>.<auth>.rpc.node.<machine>.<command>`
 *           (tokens escaped by `escapeToken`), `machinePrefix`, `machineQueue`.
 * RPC:      `defineCommands({ name: { request: zod, response: zod } })` → a typed registry
 *           (extend with `{ ...a, ...b }`); `new RpcServer({ nc, scope, machine, commands })
 *           .handle(name, fn)` or `.handleAll({ name: fn, … })`, `.start()` / `stop()`; `new RpcClient({ nc, scope, commands })
 *           .call(machine, name, request, { timeoutMs, signal })`. Errors: RPC_NO_RESPONDERS, RPC_TIMEOUT,
 *           RPC_BAD_REQUEST, RPC_REMOTE_ERROR, or the remote PloyzError's own code.
 * Machine:  `machineCommands` (ping / status / capacity; no bodies).
 * Join:     `JoinRequest` / `JoinAnswer` between a joiner's ployzd and the issuer's join listener.
 * Volumes:  `volumeCommands` (volume_snapshot / _revert / _stop_writers / _start_writers / _describe /
 *           _prune, and for branches _clone / _replace / _discard); `volumeMoveCommands`
 *           (volume_receive_prepare / volume_send / volume_receive_commit / _abort / volume_mark_moved).
 * Branches: `BranchRequest`, `PromoteRequest`, `BranchPlanView` (branch-commands.ts): the local API
 *           bodies of `ployzctl branch preview|apply|promote`.
 * Images:   `imageCommands` (image_has / image_receive_open / _chunk / _close / _abort): an image
 *           streamed from `docker save` on one machine into `docker load` on another, chunked
 *           under NATS's 1 MiB with a bounded window of unacknowledged chunks; image_pull /
 *           image_pull_check: a machine pulls an image that names its registry.
 * Registry: `RegistryLoginRequest`… (registry-commands.ts): `ployzctl registry login|ls|logout`.
 * Deploy:   `deployCommands` (deploy_start / deploy_ready / deploy_stop) and their strict body
 *           schemas (`DeployStartBody`…: the service as the manifest's `ServiceSpec`, no host paths).
 * Local API (HTTP/JSON over the daemon's unix socket):
 *           `api` is the declarative route table (name → method, path, input/output schemas,
 *           streaming); `LocalApiServer` (`implement(name, handler)`, `listen(socketPath,
 *           { mode, gid })`, `close()`); `LocalApiClient` (`call(name, input)`,
 *           `stream(name, input, { signal })` → async iterator of progress items, then the
 *           result). Success is `{ result }`, failure `{ error: { code, message, details } }`
 *           with an HTTP status from the error kind; streams are NDJSON lines of
 *           `{ progress }` ending with `{ result }` or `{ error }`. A missing or refused
 *           socket is DAEMON_UNREACHABLE with a hint to start ployzd.
 * Release:  `PLOYZ_VERSION`, `RELEASED_IMAGES`, `releaseImageRef(name, registry)` (release.ts): the
 *           version every image is tagged with and where a ployzd finds its data-plane images.
 * Components: the env contract of each edge app — `GatewayEnv`, `DnsEnv` (`defineEnvContract`:
 *           setting → env name + zod schema + default; `.build(values)` for ployzd, `.parse(env,
 *           flags)` for the app) — and the data-plane ports, `ADMIN_PATHS`, `NATS_URL_IN_NETNS`,
 *           `parseHostPort` / `formatHostPort`. Zod only.
 */

export { ADMIN_RETRY_MS, type AdminListener, listenAdmin } from './admin-beside.ts';
export { DEFAULT_SOCKET, LocalApiClient, type LocalApiClientOptions, type StreamItem } from './api-client.ts';
export {
  type Api,
  api,
  type InputOf,
  type OutputOf,
  type ProgressOf,
  type RouteName,
  type RouteSpec,
  type RouteTable,
} from './api-routes.ts';
export * from './api-schemas.ts';
export {
  asPloyzError,
  type HandlerContext,
  httpStatusFor,
  type ListenOptions,
  LocalApiServer,
  type RouteHandler,
  readJson,
  sendJson,
  socketAnswers,
  type TunnelContext,
  type TunnelHandler,
} from './api-server.ts';
export * from './branch-commands.ts';
export * from './cert-commands.ts';
export * from './components.ts';
export * from './deploy-commands.ts';
export * from './deploy-events.ts';
export { issuePath, WireErrorBody } from './error-body.ts';
export * from './exec-tunnel.ts';
export * from './image-commands.ts';
export * from './join.ts';
export * from './machine-commands.ts';
export * from './ops-commands.ts';
export type { Plain, Sendable } from './plain.ts';
export * from './registry-commands.ts';
export * from './release.ts';
export {
  type CallOptions,
  type CommandHandlers,
  type CommandRegistry,
  type CommandSpec,
  defineCommands,
  type RequestOf,
  type ResponseOf,
  RPC_TIMING_CHANNEL,
  RpcClient,
  type RpcContext,
  type RpcHandler,
  RpcReplyEnvelope,
  RpcRequestEnvelope,
  RpcServer,
  type RpcTiming,
  rpcFailure,
} from './rpc.ts';
export * from './store-commands.ts';
export {
  commandSubject,
  escapeToken,
  machinePrefix,
  machineQueue,
  type RpcScope,
  subjectPrefix,
  unescapeToken,
} from './subjects.ts';
export * from './volume-commands.ts';
export * from './volume-move-commands.ts';
