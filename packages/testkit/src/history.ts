/**
 * Histories of concurrent store clients, checked the way Jepsen checks them (issue 19): every
 * client logs each operation with the time it was invoked and the time it was acknowledged, and
 * the checker decides from the history alone — no knowledge of the implementation.
 *
 * - A lease is held from its acquire's acknowledgement until the earlier of the holder's release
 *   call and the lease's own expiry (a well-behaved holder stops at `expires_at`, so a holder cut
 *   off from the store is not counted past it). Two holds of one key that overlap are a violation;
 *   so are two acquires acknowledged with the same KV revision (two leaders each accepting a write).
 * - A commit append acknowledged with a sequence must be in the stream afterwards, at that
 *   sequence; no commit id may be stored twice; no stored commit may be one nobody appended.
 *   An append whose outcome is unknown (timed out) may or may not be stored — both are legal.
 *
 * Times are milliseconds of one clock (the clients run on one kernel).
 */

export interface LeaseHold {
  client: string;
  nonce: string;
  revision: number;
  /** The acquire's acknowledgement. */
  from: number;
  /** min(release invoked, expires_at); a hold never released ends at its expiry. */
  until: number;
}

export interface AppendOutcome {
  id: string;
  client: string;
  /** The acknowledged stream sequence; null when the append failed or timed out (unknown). */
  seq: number | null;
}

export interface StoredCommit {
  id: string;
  seq: number;
}

export interface Violation {
  kind: 'two_holders' | 'revision_twice' | 'lost_commit' | 'moved_commit' | 'commit_twice' | 'phantom_commit';
  detail: string;
}

export function leaseViolations(holds: readonly LeaseHold[]): Violation[] {
  const out: Violation[] = [];
  const real = holds.filter((h) => h.until > h.from).sort((a, b) => a.from - b.from);
  // Sorted by start: each hold overlaps an earlier one iff it starts before the latest end so far.
  let latest: LeaseHold | null = null;
  for (const h of real) {
    if (latest !== null && h.from < latest.until) {
      out.push({
        kind: 'two_holders',
        detail: `${h.client} (${h.nonce}) held from ${h.from} while ${latest.client} (${latest.nonce}) held until ${latest.until}`,
      });
    }
    if (latest === null || h.until > latest.until) latest = h;
  }
  const byRevision = new Map<number, LeaseHold>();
  for (const h of holds) {
    const seen = byRevision.get(h.revision);
    if (seen !== undefined && seen.nonce !== h.nonce) {
      out.push({
        kind: 'revision_twice',
        detail: `revision ${h.revision} acknowledged to ${seen.client} (${seen.nonce}) and ${h.client} (${h.nonce})`,
      });
    }
    byRevision.set(h.revision, h);
  }
  return out;
}

export interface CommitCheck {
  violations: Violation[];
  acknowledged: number;
  /** Appends whose outcome was unknown to the client, found stored / not stored. */
  unknownStored: number;
  unknownAbsent: number;
}

export function commitViolations(
  appends: readonly AppendOutcome[],
  stored: readonly StoredCommit[],
): CommitCheck {
  const violations: Violation[] = [];
  const storedById = new Map<string, StoredCommit>();
  for (const s of stored) {
    const first = storedById.get(s.id);
    if (first !== undefined) {
      violations.push({ kind: 'commit_twice', detail: `${s.id} stored at ${first.seq} and ${s.seq}` });
    } else storedById.set(s.id, s);
  }
  const attempted = new Set(appends.map((a) => a.id));
  for (const s of storedById.values()) {
    if (!attempted.has(s.id))
      violations.push({ kind: 'phantom_commit', detail: `${s.id} at ${s.seq} was never appended` });
  }
  let acknowledged = 0;
  let unknownStored = 0;
  let unknownAbsent = 0;
  for (const a of appends) {
    const s = storedById.get(a.id);
    if (a.seq === null) {
      if (s) unknownStored++;
      else unknownAbsent++;
      continue;
    }
    acknowledged++;
    if (!s)
      violations.push({
        kind: 'lost_commit',
        detail: `${a.id} acknowledged at ${a.seq} to ${a.client} is not stored`,
      });
    else if (s.seq !== a.seq) {
      violations.push({
        kind: 'moved_commit',
        detail: `${a.id} acknowledged at ${a.seq} is stored at ${s.seq}`,
      });
    }
  }
  return { violations, acknowledged, unknownStored, unknownAbsent };
}
