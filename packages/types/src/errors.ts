/**
 * The one error registry. Every error a user or operator can see carries a stable `code` from
 * this table. Packages throw `PloyzError`; apps print `code: message` (or JSON) and never a
 * stack trace for a user mistake. Add codes here, never ad hoc strings elsewhere.
 */
export const ERROR_CODES = {
  // Input
  MANIFEST_INVALID: { kind: 'user', summary: 'the manifest does not validate' },
  MANIFEST_SYNTAX: { kind: 'user', summary: 'the manifest is not valid TOML or JSON' },
  MANIFEST_NOT_FOUND: { kind: 'user', summary: 'the manifest file cannot be read' },
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
  // Daemon / API
  DAEMON_UNREACHABLE: { kind: 'transient', summary: 'ployzd does not answer on its socket' },
  API_BAD_REQUEST: { kind: 'user', summary: 'the local API request did not validate' },
  PERMISSION_DENIED: { kind: 'user', summary: 'the caller may not use this socket or command' },
  // Runtime
  DOCKER_UNAVAILABLE: { kind: 'transient', summary: 'the Docker engine does not answer' },
  NAME_COLLISION: { kind: 'user', summary: 'a container without Ployz labels holds a name Ployz needs' },
  IMAGE_MISSING: { kind: 'user', summary: 'an image is not present locally' },
  // Deploy
  DEPLOY_NO_CAPACITY: { kind: 'user', summary: 'no eligible machine can take the placement' },
  DEPLOY_READINESS_FAILED: { kind: 'user', summary: 'a candidate never became ready' },
  DEPLOY_FAILED: { kind: 'internal', summary: 'the deploy failed before its first commit' },
  DEPLOY_FAILED_AFTER_CHECKPOINT: {
    kind: 'internal',
    summary: 'work after a commit failed; committed facts stay live',
  },
  ROLLBACK_INVALID: { kind: 'user', summary: 'the deploy cannot be rolled back to' },
  // Secrets
  SECRET_KEY_MISMATCH: {
    kind: 'user',
    summary:
      'a sealed value was sealed under another installation key; give this daemon the installation key',
  },
  SECRET_KEY_INVALID: { kind: 'user', summary: 'the installation key is not 32 bytes of base64url' },
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

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export function isPloyzError(value: unknown, code?: ErrorCode): value is PloyzError {
  return value instanceof PloyzError && (code === undefined || value.code === code);
}
