/**
 * The one error registry. Every error a user or operator can see carries a stable `code` from
 * this table. Packages throw `PloyzError`; apps print `code: message` (or JSON) and never a
 * stack trace for a user mistake, and exit with the code's status (exit-status.ts, by its kind).
 * Add codes here, never ad hoc strings elsewhere, and document each in docs/errors.md.
 */
export const ERROR_CODES = {
  // Input
  MANIFEST_INVALID: { kind: 'user', summary: 'the manifest does not validate' },
  MANIFEST_SYNTAX: { kind: 'user', summary: 'the manifest is not valid TOML or JSON' },
  MANIFEST_NOT_FOUND: { kind: 'user', summary: 'the manifest file cannot be read' },
  MANIFEST_TOO_LARGE: { kind: 'user', summary: 'the manifest is larger than the size limit' },
  CONFIG_INVALID: { kind: 'user', summary: 'configuration (env, flags or file) is invalid' },
  INVALID_ARGUMENT: { kind: 'user', summary: 'an argument is out of range or malformed' },
  NOT_INITIALISED: { kind: 'user', summary: 'this machine has no Ployz installation yet' },
  ALREADY_INITIALISED: { kind: 'user', summary: 'this machine already belongs to an installation' },
  NOT_FOUND: { kind: 'user', summary: 'the named object does not exist' },
  // Store
  STORE_CONFLICT: { kind: 'conflict', summary: 'a compare-and-set write lost a race' },
  STORE_UNAVAILABLE: { kind: 'transient', summary: 'NATS JetStream cannot be reached' },
  STORE_CORRUPT: { kind: 'internal', summary: 'a stored record does not match its schema' },
  COMMIT_CONFLICT: { kind: 'conflict', summary: 'a different commit already exists under this id' },
  REPLICAS_INVALID: { kind: 'user', summary: 'replica count must be 1, 3 or 5' },
  STORE_NO_QUORUM: {
    kind: 'transient',
    summary:
      'the replicated store has lost its quorum (a majority of storage servers is down); writes are refused',
  },
  STORE_MIGRATION_FAILED: {
    kind: 'transient',
    summary:
      'copying or verifying the store into its new cluster failed; the old store is untouched and stays in use',
  },
  STORE_MIGRATION_TARGET_IN_USE: {
    kind: 'user',
    summary: 'the migration target already holds store assets that are not from an unfinished migration',
  },
  STORE_PROMOTE_UNSUPPORTED: {
    kind: 'user',
    summary: 'only promoting the store from 1 replica to 3 is supported (never 2); nothing was changed',
  },
  STORE_PROMOTE_MACHINES_INVALID: {
    kind: 'user',
    summary: 'a store promotion needs three distinct, known, active machines',
  },
  STORE_PROMOTE_UNHEALTHY: {
    kind: 'transient',
    summary: 'a machine named for the store is unreachable, unhealthy or too far (RTT over the bound) now',
  },
  STORE_PROMOTING: {
    kind: 'conflict',
    summary: 'the store is being promoted to more replicas; deploys are refused until it finishes or fails',
  },
  ROUTING_FEED_BROKEN: {
    kind: 'transient',
    summary: 'the routing event feed has a gap, lost its consumer or saw a restart; rebuild from a snapshot',
  },
  // Coordination
  DEPLOY_LOCK_HELD: { kind: 'conflict', summary: 'another deploy holds the namespace lease' },
  LEASE_LOST: { kind: 'conflict', summary: 'the lease expired or was taken over' },
  // RPC
  RPC_NO_RESPONDERS: { kind: 'transient', summary: 'no machine answers on that subject' },
  RPC_TIMEOUT: { kind: 'transient', summary: 'the machine did not answer in time' },
  RPC_BAD_REQUEST: { kind: 'user', summary: 'the RPC request did not validate' },
  RPC_REMOTE_ERROR: { kind: 'internal', summary: 'the machine failed the command' },
  RPC_WRONG_MACHINE: {
    kind: 'user',
    summary: 'the request names another machine than the one it was sent to; nothing was done',
  },
  RPC_NOT_MANAGED: {
    kind: 'user',
    summary:
      'the request names a container that is not a Ployz workload of that namespace; it was left alone',
  },
  RPC_PATH_ESCAPE: {
    kind: 'user',
    summary: 'a volume resolves outside the volume root (.., absolute path or symlink); nothing was created',
  },
  // Daemon / API
  DAEMON_UNREACHABLE: { kind: 'transient', summary: 'ployzd does not answer on its socket' },
  ENGINE_NOT_READY: {
    kind: 'transient',
    summary:
      'ployzd answers but its deploy engine is not started (machine not initialised or NATS not connected)',
  },
  API_BAD_REQUEST: { kind: 'user', summary: 'the local API request did not validate' },
  PERMISSION_DENIED: { kind: 'user', summary: 'the caller may not use this socket or command' },
  // Runtime
  DOCKER_UNAVAILABLE: { kind: 'transient', summary: 'the Docker engine does not answer' },
  DOCKER_REFUSED: {
    kind: 'internal',
    summary: 'the Docker engine runs but refused an operation (the message has its words)',
  },
  NATS_RELOAD_FAILED: {
    kind: 'transient',
    summary: 'ployz-nats did not take its new config (credentials rotation); the keys that worked still work',
  },
  REPLACEMENT_UNHEALTHY: {
    kind: 'transient',
    summary:
      'a new gateway or dns container started beside the old one did not become healthy; the old one keeps serving',
  },
  NAME_COLLISION: { kind: 'user', summary: 'a container without Ployz labels holds a name Ployz needs' },
  IMAGE_MISSING: { kind: 'user', summary: 'an image is not present locally' },
  IMAGE_TRANSFER_FAILED: {
    kind: 'transient',
    summary: 'sending an image to a machine over the mesh broke off; nothing was registered there',
  },
  IMAGE_TRANSFER_MISMATCH: {
    kind: 'internal',
    summary: 'what a machine received is not the image sent (bytes, sha256 or image id); it was removed',
  },
  IMAGE_PULL_FAILED: {
    kind: 'transient',
    summary:
      'a machine could not pull an image from its registry (unreachable, credentials refused, no such tag); the deploy wrote nothing',
  },
  IMAGE_VERIFY_FAILED: {
    kind: 'transient',
    summary:
      'a pulled data-plane image is not what its tag promised (digest or version label); it was untagged and nothing was replaced',
  },
  REGISTRY_AUTH_FAILED: {
    kind: 'user',
    summary:
      'the registry refused the username and password given to ployzctl registry login; nothing was stored',
  },
  // Deploy
  DEPLOY_NO_CAPACITY: { kind: 'user', summary: 'no eligible machine can take the placement' },
  DEPLOY_READINESS_FAILED: { kind: 'user', summary: 'a candidate never became ready' },
  DEPLOY_FAILED: { kind: 'internal', summary: 'the deploy failed before its first commit' },
  DEPLOY_FAILED_AFTER_CHECKPOINT: {
    kind: 'internal',
    summary: 'work after a commit failed; committed facts stay live',
  },
  HOSTNAME_OWNED: {
    kind: 'conflict',
    summary: "a route's hostname + path (or tcp listen port) belongs to another namespace's release",
  },
  ROLLBACK_INVALID: { kind: 'user', summary: 'the deploy cannot be rolled back to' },
  ROLLBACK_NO_SNAPSHOT: {
    kind: 'user',
    summary: 'a volume has no snapshot from the target deploy, so its data would not revert',
  },
  ROLLBACK_VOLUME_ELSEWHERE: {
    kind: 'user',
    summary: "a volume's snapshot from the target deploy is on another machine than the volume",
  },
  ROLLBACK_PAST_MOVE: {
    kind: 'user',
    summary:
      'a volume of the namespace moved between machines after the target deploy; a rollback cannot cross a move',
  },
  // Branches (ployzctl branch preview|apply|promote)
  BRANCH_SOURCE_UNKNOWN: {
    kind: 'user',
    summary: 'the namespace to branch (or to promote into) has no committed release',
  },
  BRANCH_DESTINATION_EXISTS: {
    kind: 'conflict',
    summary: 'the branch namespace already exists (releases, instances or volumes); nothing was changed',
  },
  BRANCH_VOLUME_UNKNOWN: {
    kind: 'user',
    summary: '--volume names a volume the branch does not have, or a mode other than clone or empty',
  },
  BRANCH_NO_SNAPSHOT: {
    kind: 'user',
    summary:
      'a volume to clone has no snapshot from a commit of the source (dir storage, or never committed)',
  },
  BRANCH_VOLUME_ELSEWHERE: {
    kind: 'user',
    summary: "a volume's data is on another machine than the slot that would mount it in the branch",
  },
  BRANCH_HOST_SUFFIX_INVALID: {
    kind: 'user',
    summary: '--host-suffix is not DNS labels, or a hostname with it would be too long',
  },
  BRANCH_MANIFEST_NAMESPACE: {
    kind: 'user',
    summary: 'the branch manifest (-f) names another namespace than the branch',
  },
  PROMOTE_NOT_A_BRANCH: {
    kind: 'user',
    summary: 'the namespace to promote was not branched from the namespace named as its source',
  },
  CONFIRMATION_REQUIRED: {
    kind: 'user',
    summary: 'the command changes a live namespace and needs --yes (or an answer at the prompt)',
  },
  // Storage (volume drivers: zfs, btrfs, dir)
  STORAGE_TOOL_MISSING: {
    kind: 'user',
    summary: 'a tool the volume driver needs is not installed; the message names the Debian package',
  },
  STORAGE_INVALID: {
    kind: 'user',
    summary:
      'a volume name, snapshot label, owner, mode or quota is malformed or not allowed (e.g. below used)',
  },
  STORAGE_UNSUPPORTED: {
    kind: 'user',
    summary:
      "the machine's volume driver cannot do this (dir: no snapshots, so data will not revert; no quota)",
  },
  STORAGE_EXISTS: {
    kind: 'conflict',
    summary: 'a volume or snapshot of that name already exists; nothing was changed',
  },
  STORAGE_BUSY: {
    kind: 'conflict',
    summary: 'the volume is in use (a process or container has it open); stop its writers first',
  },
  STORAGE_FAILED: { kind: 'internal', summary: 'a storage command (zfs, zpool, btrfs) failed' },
  // Volume moves (ADR 0021): a zfs/btrfs send stream between two machines
  VOLUME_TRANSFER_FAILED: {
    kind: 'transient',
    summary:
      'a volume transfer broke off (closed, no bytes in time, receive failed, never connected); the target kept nothing',
  },
  VOLUME_TRANSFER_MISMATCH: {
    kind: 'internal',
    summary:
      'what the target received is not the snapshot sent (guid, received uuid, tree sha256, bytes, or a stream checksum); it was destroyed',
  },
  VOLUME_TRANSFER_REFUSED: {
    kind: 'conflict',
    summary:
      'the target refused the transfer connection (token unknown, used or expired; not from the source machine; header not the slot it was issued for)',
  },
  // Secrets
  SECRET_KEY_MISMATCH: {
    kind: 'user',
    summary:
      'a sealed value was sealed under another installation key; give this daemon the installation key',
  },
  SECRET_KEY_INVALID: { kind: 'user', summary: 'the installation key is not 32 bytes of base64url' },
  // Fleet (invites and joins)
  INVITE_INVALID: {
    kind: 'user',
    summary:
      'the invite token is malformed, its signature does not verify, or it is of another installation; nothing was changed',
  },
  INVITE_EXPIRED: { kind: 'user', summary: 'the invite token has expired; nothing was changed' },
  INVITE_USED: {
    kind: 'conflict',
    summary: 'the invite token was already used by another join; nothing was changed',
  },
  // Operations (ps, logs, exec, namespace)
  // Automatic HTTPS (ACME)
  ACME_ORDER_FAILED: {
    kind: 'transient',
    summary: 'the ACME directory did not issue a certificate (unreachable, challenge not validated, refused)',
  },
  CERT_UNKNOWN: { kind: 'user', summary: 'no route with tls = "auto" and no certificate for that hostname' },
  NAMESPACE_UNKNOWN: { kind: 'user', summary: 'no committed deploy of that namespace exists' },
  SERVICE_UNKNOWN: { kind: 'user', summary: 'the namespace has no committed service of that name' },
  NO_RUNNING_INSTANCE: {
    kind: 'user',
    summary: 'the service (or the instance asked for) has no running instance to attach to',
  },
  MACHINE_UNREACHABLE: {
    kind: 'transient',
    summary:
      'a machine does not answer over RPC (the one holding an instance, or a deploy participant lost mid-deploy)',
  },
  MACHINE_IN_USE: {
    kind: 'conflict',
    summary:
      'the machine still runs committed slots or holds volumes; drain it and deploy again, or remove it with --force',
  },
  MACHINE_IS_STORAGE: {
    kind: 'conflict',
    summary:
      'the machine holds a replica of the store (the standalone store, or one of its three members); it cannot be removed, not even with --force',
  },
  // Catch-all for bugs: never used for user mistakes.
  INTERNAL: { kind: 'internal', summary: 'an unexpected internal error' },
} as const satisfies Record<string, { kind: ErrorKind; summary: string }>;

export type ErrorKind = 'user' | 'conflict' | 'transient' | 'internal';
export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
}

export class PloyzError extends Error {
  override readonly name = 'PloyzError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options: { details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  get kind(): ErrorKind {
    return ERROR_CODES[this.code].kind;
  }

  toJSON(): ErrorBody {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }

  static fromBody(body: ErrorBody): PloyzError {
    return new PloyzError(isErrorCode(body.code) ? body.code : 'INTERNAL', body.message, {
      ...(body.details ? { details: body.details } : {}),
    });
  }
}

/**
 * The wire body of any thrown value: a PloyzError's own, anything else as `fallback` (INTERNAL
 * unless the caller knows better, e.g. RPC_REMOTE_ERROR for a remote handler) with its message.
 */
export function toErrorBody(err: unknown, fallback: ErrorCode = 'INTERNAL'): ErrorBody {
  if (err instanceof PloyzError) return err.toJSON();
  return { code: fallback, message: err instanceof Error ? err.message : String(err) };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export function isPloyzError(value: unknown, code?: ErrorCode): value is PloyzError {
  return value instanceof PloyzError && (code === undefined || value.code === code);
}
