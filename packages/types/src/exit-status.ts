/**
 * The one map from an error code to a process exit status, used by every Ployz program (ployzctl,
 * ployzd). A code's status follows from its kind in `ERROR_CODES`, so a new code gets its status by
 * choosing its kind. docs/errors.md lists the table (test/errors-doc.test.ts keeps them equal).
 */
import { ERROR_CODES, type ErrorCode, type ErrorKind, isPloyzError } from './errors.ts';

export const EXIT_STATUS = {
  /** Done; for `ployzctl deploy preview`: nothing to change. */
  OK: 0,
  /** An internal or transient failure (a bug, or something not reachable yet): retry or report. */
  FAILED: 1,
  /** Refused: the user's input is wrong, or it lost to another writer (user and conflict kinds). */
  REFUSED: 2,
  /** `ployzctl deploy preview` only: the plan has changes pending (not an error). */
  CHANGES_PENDING: 3,
} as const;

export type ExitStatus = (typeof EXIT_STATUS)[keyof typeof EXIT_STATUS];
/** The statuses an error can end a program with. */
export type ErrorExitStatus = typeof EXIT_STATUS.FAILED | typeof EXIT_STATUS.REFUSED;

export const EXIT_STATUS_BY_KIND = {
  user: EXIT_STATUS.REFUSED,
  conflict: EXIT_STATUS.REFUSED,
  transient: EXIT_STATUS.FAILED,
  internal: EXIT_STATUS.FAILED,
} as const satisfies Record<ErrorKind, ErrorExitStatus>;

/** The exit status of an error code. */
export function exitStatus(code: ErrorCode): ErrorExitStatus {
  return EXIT_STATUS_BY_KIND[ERROR_CODES[code].kind];
}

/** The exit status for anything thrown: a `PloyzError` by its code; anything else is a bug (1). */
export function exitStatusOf(error: unknown): ErrorExitStatus {
  return isPloyzError(error) ? exitStatus(error.code) : EXIT_STATUS.FAILED;
}
