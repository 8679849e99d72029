/**
 * A cache of upstream answers for names outside the zone (RFC 1035 §7.4, RFC 2308 for negative
 * answers). Entries are the upstream's bytes; a hit is a copy with the caller's ID and question
 * bytes (so 0x20 letter case survives) and every TTL lowered by the time spent in the cache.
 * Bounded by entry count (least recently used goes first) and by a TTL ceiling. Not cached:
 * truncated answers, SERVFAIL/REFUSED and other errors, TTL 0, negative answers without an SOA.
 */
import {
  foldAscii,
  HEADER_LENGTH,
  type ParsedQuery,
  questionKey,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  skipName,
  TYPE_OPT,
  TYPE_SOA,
} from './wire.ts';

export interface ForwardCacheOptions {
  /** Most answers kept (0 turns the cache off). */
  maxEntries: number;
  /** Answers are kept at most this long, whatever their TTL says. */
  maxTtlSeconds: number;
  /** Milliseconds clock (tests). */
  now?: () => number;
}

interface Entry {
  response: Buffer;
  /** Where its TTL fields are (found once, at put). */
  ttlOffsets: number[];
  storedAt: number;
  expiresAt: number;
}

/** Where each resource record's TTL sits in a response, and the rest of what caching needs. */
interface ResponseShape {
  rcode: number;
  truncated: boolean;
  ancount: number;
  /** Offsets of the TTL fields of answer, authority and additional records (OPT excluded). */
  ttlOffsets: number[];
  /** Lowest TTL over the answer and authority records, or -1 when there is none. */
  minTtl: number;
  /** The negative-caching TTL from an authority SOA (min of its TTL and MINIMUM), or -1. */
  soaTtl: number;
}

function u16(msg: Buffer, at: number): number {
  return ((msg[at] as number) << 8) | (msg[at + 1] as number);
}

/** Walks a response's records; null when it is malformed. */
export function responseShape(msg: Buffer): ResponseShape | null {
  if (msg.length < HEADER_LENGTH || ((msg[2] as number) & 0x80) === 0) return null;
  if (u16(msg, 4) !== 1) return null;
  const ancount = u16(msg, 6);
  const nscount = u16(msg, 8);
  const arcount = u16(msg, 10);
  const afterQname = skipName(msg, HEADER_LENGTH);
  if (afterQname < 0 || afterQname + 4 > msg.length) return null;
  let offset = afterQname + 4;
  const ttlOffsets: number[] = [];
  let minTtl = -1;
  let soaTtl = -1;
  for (let i = 0; i < ancount + nscount + arcount; i++) {
    const afterName = skipName(msg, offset);
    if (afterName < 0 || afterName + 10 > msg.length) return null;
    const type = u16(msg, afterName);
    const ttl = msg.readUInt32BE(afterName + 4);
    const rdLength = u16(msg, afterName + 8);
    const next = afterName + 10 + rdLength;
    if (next > msg.length) return null;
    if (type !== TYPE_OPT) {
      ttlOffsets.push(afterName + 4);
      if (i < ancount + nscount) minTtl = minTtl === -1 ? ttl : Math.min(minTtl, ttl);
      if (type === TYPE_SOA && i >= ancount && i < ancount + nscount) {
        // RDATA: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM (5 × 32 bits).
        const afterMname = skipName(msg, afterName + 10);
        const afterRname = afterMname < 0 ? -1 : skipName(msg, afterMname);
        if (afterRname < 0 || afterRname + 20 > next) return null;
        soaTtl = Math.min(ttl, msg.readUInt32BE(afterRname + 16));
      }
    }
    offset = next;
  }
  return {
    rcode: (msg[3] as number) & 0x0f,
    truncated: ((msg[2] as number) & 0x02) !== 0,
    ancount,
    ttlOffsets,
    minTtl,
    soaTtl,
  };
}

/** How long a response may be cached, in seconds (0: not at all). */
export function cacheSeconds(shape: ResponseShape, maxTtlSeconds: number): number {
  if (shape.truncated) return 0;
  let ttl: number;
  if (shape.rcode === RCODE_NXDOMAIN || (shape.rcode === RCODE_NOERROR && shape.ancount === 0)) {
    ttl = shape.soaTtl; // RFC 2308 §5: negative answers only with an SOA to time them
  } else if (shape.rcode === RCODE_NOERROR) {
    ttl = shape.minTtl;
  } else {
    return 0;
  }
  return ttl <= 0 ? 0 : Math.min(ttl, maxTtlSeconds);
}

/** Cache key: name (case-folded), type, class, and the flags that change an upstream's answer. */
function keyOf(query: Buffer, parsed: ParsedQuery): string {
  const rd = (query[2] as number) & 0x01;
  const cd = ((query[3] as number) & 0x10) >> 4;
  const edns = parsed.ednsSize === null ? 0 : parsed.ednsDo ? 2 : 1;
  return `${cacheName(query, parsed.nameEnd)}/${parsed.qtype}/${parsed.qclass}/${rd}${cd}${edns}`;
}

/**
 * The question name with ASCII letters folded, and only those (RFC 4343): `toLowerCase` would also
 * fold latin1 À–Þ and let two different names share an entry. Zone lookups can keep questionKey:
 * zone names are ASCII, and no non-ASCII byte folds into ASCII.
 */
function cacheName(query: Buffer, nameEnd: number): string {
  for (let i = HEADER_LENGTH; i < nameEnd; i++) {
    if ((query[i] as number) >= 0x80) {
      let out = '';
      for (let j = HEADER_LENGTH; j < nameEnd; j++) {
        out += String.fromCharCode(foldAscii(query[j] as number));
      }
      return out;
    }
  }
  return questionKey(query, nameEnd);
}

export class ForwardCache {
  readonly #entries = new Map<string, Entry>();
  readonly #options: ForwardCacheOptions;
  readonly #now: () => number;
  hits = 0;
  misses = 0;

  constructor(options: ForwardCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * The cached answer to `query` with TTLs lowered by its age, or null. `limit` is the caller's
   * UDP size limit (0 for TCP): an answer bigger than that is left for the upstream to truncate.
   */
  get(query: Buffer, parsed: ParsedQuery, limit: number): Buffer | null {
    if (this.#options.maxEntries === 0) return null;
    const key = keyOf(query, parsed);
    const entry = this.#entries.get(key);
    const now = this.#now();
    if (entry === undefined || now >= entry.expiresAt || (limit > 0 && entry.response.length > limit)) {
      if (entry !== undefined && now >= entry.expiresAt) this.#entries.delete(key);
      this.misses += 1;
      return null;
    }
    // Most recently used last: Map order is the eviction order.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    this.hits += 1;
    const out = Buffer.from(entry.response);
    query.copy(out, 0, 0, 2); // the caller's ID
    query.copy(out, HEADER_LENGTH, HEADER_LENGTH, parsed.questionEnd); // the caller's letter case
    const age = Math.floor((now - entry.storedAt) / 1000);
    if (age > 0) {
      for (const at of entry.ttlOffsets) out.writeUInt32BE(Math.max(0, out.readUInt32BE(at) - age), at);
    }
    return out;
  }

  /** Keeps `response` (the upstream's answer to `query`) for as long as it may be cached. */
  put(query: Buffer, parsed: ParsedQuery, response: Buffer): void {
    if (this.#options.maxEntries === 0) return;
    const shape = responseShape(response);
    if (shape === null) return;
    const seconds = cacheSeconds(shape, this.#options.maxTtlSeconds);
    if (seconds === 0) return;
    const key = keyOf(query, parsed);
    const now = this.#now();
    this.#entries.delete(key);
    this.#entries.set(key, {
      response: Buffer.from(response),
      ttlOffsets: shape.ttlOffsets,
      storedAt: now,
      expiresAt: now + seconds * 1000,
    });
    while (this.#entries.size > this.#options.maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
