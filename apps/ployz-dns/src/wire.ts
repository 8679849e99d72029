/**
 * DNS wire format (RFC 1035, RFC 6891 for EDNS): the query parser used on every packet and the
 * encoders used when answers are precomputed. The hot path never builds objects per record:
 * it reads the header and the question, and copies bytes. See docs/adr/0004-dns-wire.md.
 */
import { isIPv4, isIPv6 } from 'node:net';

export const TYPE_A = 1;
export const TYPE_NS = 2;
export const TYPE_SOA = 6;
export const TYPE_AAAA = 28;
export const TYPE_SRV = 33;
export const TYPE_OPT = 41;
export const TYPE_IXFR = 251;
export const TYPE_AXFR = 252;
export const TYPE_ANY = 255;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE_NOERROR = 0;
export const RCODE_FORMERR = 1;
export const RCODE_SERVFAIL = 2;
export const RCODE_NXDOMAIN = 3;
export const RCODE_NOTIMP = 4;
export const RCODE_REFUSED = 5;
/** Extended RCODE 16 (BADVERS): upper 8 bits travel in the OPT record. */
export const RCODE_BADVERS = 16;

export const HEADER_LENGTH = 12;
/** The UDP payload size this server advertises and never exceeds (DNS flag day 2020). */
export const EDNS_PAYLOAD = 1232;
export const CLASSIC_UDP_LIMIT = 512;
const MAX_NAME_WIRE = 255;

/** A query whose header and single question are well formed. Offsets index the packet. */
export interface ParsedQuery {
  kind: 'query';
  id: number;
  /** Offset just past QNAME. */
  nameEnd: number;
  /** Offset just past QTYPE/QCLASS. */
  questionEnd: number;
  qtype: number;
  qclass: number;
  /** The requester's UDP payload size from OPT, or null when the query carries no OPT. */
  ednsSize: number | null;
  /** EDNS version asked for (0 when none or 0). */
  ednsVersion: number;
  /** The OPT record's DO bit (DNSSEC OK). */
  ednsDo: boolean;
}

/** A packet that deserves an error answer. `questionEnd` is set when the question parsed. */
export interface RejectedQuery {
  kind: 'reject';
  rcode: number;
  questionEnd: number | null;
  ednsSize: number | null;
}

/** Not worth answering (too short to hold an ID, or a response rather than a query). */
export interface DroppedPacket {
  kind: 'drop';
  reason: 'short' | 'response';
}

export type QueryParse = ParsedQuery | RejectedQuery | DroppedPacket;

/**
 * Parses header, question and additional section (for OPT) of a query. Never throws; every
 * bound is checked. Compression pointers in the question are rejected: the first name of a
 * message can only point into the header, which is never a name.
 */
export function parseQuery(msg: Uint8Array): QueryParse {
  const length = msg.length;
  if (length < HEADER_LENGTH) return { kind: 'drop', reason: 'short' };
  const flags = msg[2] as number;
  if ((flags & 0x80) !== 0) return { kind: 'drop', reason: 'response' };
  const opcode = (flags >> 3) & 0x0f;
  const qdcount = ((msg[4] as number) << 8) | (msg[5] as number);
  const ancount = ((msg[6] as number) << 8) | (msg[7] as number);
  const nscount = ((msg[8] as number) << 8) | (msg[9] as number);
  const arcount = ((msg[10] as number) << 8) | (msg[11] as number);
  if (opcode !== 0) return { kind: 'reject', rcode: RCODE_NOTIMP, questionEnd: null, ednsSize: null };
  if (qdcount !== 1) return { kind: 'reject', rcode: RCODE_FORMERR, questionEnd: null, ednsSize: null };

  let offset = HEADER_LENGTH;
  for (;;) {
    if (offset >= length) return formerr(null);
    const labelLength = msg[offset] as number;
    if (labelLength === 0) {
      offset += 1;
      break;
    }
    if (labelLength > 63) return formerr(null); // pointer or reserved label type
    offset += labelLength + 1;
    if (offset - HEADER_LENGTH > MAX_NAME_WIRE - 1) return formerr(null);
  }
  const nameEnd = offset;
  if (nameEnd + 4 > length) return formerr(null);
  const qtype = ((msg[nameEnd] as number) << 8) | (msg[nameEnd + 1] as number);
  const qclass = ((msg[nameEnd + 2] as number) << 8) | (msg[nameEnd + 3] as number);
  const questionEnd = nameEnd + 4;
  offset = questionEnd;

  // Skip answer and authority records (queries rarely carry any, but counts must be honest).
  for (let i = 0; i < ancount + nscount; i++) {
    const next = skipRecord(msg, offset);
    if (next < 0) return formerr(questionEnd);
    offset = next;
  }
  let ednsSize: number | null = null;
  let ednsVersion = 0;
  let ednsDo = false;
  for (let i = 0; i < arcount; i++) {
    const nameStart = offset;
    const afterName = skipName(msg, offset);
    if (afterName < 0 || afterName + 10 > length) return formerr(questionEnd);
    const type = ((msg[afterName] as number) << 8) | (msg[afterName + 1] as number);
    const rdLength = ((msg[afterName + 8] as number) << 8) | (msg[afterName + 9] as number);
    const next = afterName + 10 + rdLength;
    if (next > length) return formerr(questionEnd);
    if (type === TYPE_OPT) {
      // Exactly one OPT, owned by the root name (RFC 6891 §6.1.1).
      if (ednsSize !== null || msg[nameStart] !== 0) return formerr(questionEnd);
      ednsSize = ((msg[afterName + 2] as number) << 8) | (msg[afterName + 3] as number);
      ednsVersion = msg[afterName + 5] as number;
      ednsDo = ((msg[afterName + 6] as number) & 0x80) !== 0;
    }
    offset = next;
  }
  return {
    kind: 'query',
    id: ((msg[0] as number) << 8) | (msg[1] as number),
    nameEnd,
    questionEnd,
    qtype,
    qclass,
    ednsSize,
    ednsVersion,
    ednsDo,
  };
}

function formerr(questionEnd: number | null): RejectedQuery {
  return { kind: 'reject', rcode: RCODE_FORMERR, questionEnd, ednsSize: null };
}

/** Offset after a (possibly compressed) name, or -1. Pointers end a name; they are not followed. */
export function skipName(msg: Uint8Array, start: number): number {
  let offset = start;
  for (let hops = 0; hops < 128; hops++) {
    if (offset >= msg.length) return -1;
    const labelLength = msg[offset] as number;
    if (labelLength === 0) return offset + 1;
    if ((labelLength & 0xc0) === 0xc0) return offset + 2 <= msg.length ? offset + 2 : -1;
    if (labelLength > 63) return -1;
    offset += labelLength + 1;
  }
  return -1;
}

function skipRecord(msg: Uint8Array, start: number): number {
  const afterName = skipName(msg, start);
  if (afterName < 0 || afterName + 10 > msg.length) return -1;
  const rdLength = ((msg[afterName + 8] as number) << 8) | (msg[afterName + 9] as number);
  const next = afterName + 10 + rdLength;
  return next > msg.length ? -1 : next;
}

/** The lookup key of a question name: its wire bytes, ASCII-lowercased, as a latin1 string. */
export function questionKey(msg: Buffer, nameEnd: number): string {
  return msg.toString('latin1', HEADER_LENGTH, nameEnd).toLowerCase();
}

/** One byte with ASCII letter case folded (RFC 4343: DNS names compare case-insensitively in ASCII only). */
export function foldAscii(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
}

// ---------------------------------------------------------------- encoders (projection time)

/** Wire form of a dotted name (no trailing dot needed), lowercased. Throws on invalid names. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  if (trimmed === '') return Buffer.from([0]);
  const parts: Buffer[] = [];
  for (const label of trimmed.toLowerCase().split('.')) {
    const bytes = Buffer.from(label, 'latin1');
    if (bytes.length === 0 || bytes.length > 63) throw new RangeError(`invalid DNS label in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const wire = Buffer.concat(parts);
  if (wire.length > MAX_NAME_WIRE) throw new RangeError(`DNS name too long: ${name}`);
  return wire;
}

export function nameKey(name: string): string {
  return encodeName(name).toString('latin1');
}

/** Pointer to the question name, which always starts right after the header. */
const POINTER_TO_QNAME = Buffer.from([0xc0, HEADER_LENGTH]);

/** One resource record. `owner` null means "the question name" (a 2-byte pointer). */
export function encodeRecord(owner: Buffer | null, type: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(type, 0);
  fixed.writeUInt16BE(CLASS_IN, 2);
  fixed.writeUInt32BE(ttl >>> 0, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([owner ?? POINTER_TO_QNAME, fixed, rdata]);
}

export function ipv4Bytes(ip: string): Buffer {
  if (!isIPv4(ip)) throw new RangeError(`not an IPv4 address: ${ip}`);
  return Buffer.from(ip.split('.').map((part) => Number(part)));
}

export function ipv6Bytes(ip: string): Buffer {
  if (!isIPv6(ip)) throw new RangeError(`not an IPv6 address: ${ip}`);
  let text = ip;
  const out = Buffer.alloc(16);
  const dotted = text.lastIndexOf(':');
  let tail: number[] = [];
  if (text.includes('.', dotted)) {
    const v4 = ipv4Bytes(text.slice(dotted + 1));
    tail = [((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number)];
    text = `${text.slice(0, dotted + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const zeros = 8 - headGroups.length - restGroups.length;
  const groups = [
    ...headGroups,
    ...(rest === undefined ? [] : Array.from({ length: zeros }, () => '0')),
    ...restGroups,
  ].map((g) => Number.parseInt(g, 16));
  if (tail.length === 2) {
    groups[6] = tail[0] as number;
    groups[7] = tail[1] as number;
  }
  groups.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  return out;
}

export function srvRdata(priority: number, weight: number, port: number, target: string): Buffer {
  const fixed = Buffer.alloc(6);
  fixed.writeUInt16BE(priority, 0);
  fixed.writeUInt16BE(weight, 2);
  fixed.writeUInt16BE(port, 4);
  return Buffer.concat([fixed, encodeName(target)]);
}

export function soaRdata(mname: string, rname: string, serial: number, minimum: number): Buffer {
  const fixed = Buffer.alloc(20);
  fixed.writeUInt32BE(serial >>> 0, 0);
  fixed.writeUInt32BE(60, 4); // refresh
  fixed.writeUInt32BE(10, 8); // retry
  fixed.writeUInt32BE(600, 12); // expire
  fixed.writeUInt32BE(minimum, 16); // negative-caching TTL
  return Buffer.concat([encodeName(mname), encodeName(rname), fixed]);
}

// ---------------------------------------------------------------- responses (hot path)

/** A precomputed answer: everything after the question except our OPT record. */
export interface WireAnswer {
  rcode: number;
  authoritative: boolean;
  ancount: number;
  nscount: number;
  arcount: number;
  body: Buffer;
}

const OPT_RECORD_LENGTH = 11;

/** UDP size limit for a query: 512 without EDNS, else the advertised size within [512, 1232]. */
export function udpLimit(ednsSize: number | null): number {
  if (ednsSize === null) return CLASSIC_UDP_LIMIT;
  return Math.min(Math.max(ednsSize, CLASSIC_UDP_LIMIT), EDNS_PAYLOAD);
}

/**
 * Builds a response from the query bytes (header and question copied, so the question keeps
 * the caller's letter case) and a precomputed answer. `limit` is the UDP size limit, or 0 for
 * TCP. When the answer does not fit, the response carries the question only and TC.
 */
export function buildResponse(query: Buffer, parsed: ParsedQuery, answer: WireAnswer, limit: number): Buffer {
  const withOpt = parsed.ednsSize !== null;
  const optLength = withOpt ? OPT_RECORD_LENGTH : 0;
  const questionEnd = parsed.questionEnd;
  let total = questionEnd + answer.body.length + optLength;
  const truncated = limit > 0 && total > limit;
  if (truncated) total = questionEnd + optLength;
  const out = Buffer.allocUnsafe(total);
  query.copy(out, 0, 0, questionEnd);
  out[2] = 0x80 | (answer.authoritative ? 0x04 : 0) | (truncated ? 0x02 : 0) | ((query[2] as number) & 0x01);
  out[3] = 0x80 | ((query[3] as number) & 0x10) | (answer.rcode & 0x0f);
  out[4] = 0;
  out[5] = 1;
  const an = truncated ? 0 : answer.ancount;
  const ns = truncated ? 0 : answer.nscount;
  const ar = (truncated ? 0 : answer.arcount) + (withOpt ? 1 : 0);
  out[6] = an >> 8;
  out[7] = an & 0xff;
  out[8] = ns >> 8;
  out[9] = ns & 0xff;
  out[10] = ar >> 8;
  out[11] = ar & 0xff;
  let offset = questionEnd;
  if (!truncated) {
    answer.body.copy(out, offset);
    offset += answer.body.length;
  }
  if (withOpt) writeOpt(out, offset, 0);
  return out;
}

function writeOpt(out: Buffer, offset: number, extendedRcode: number): void {
  out[offset] = 0; // root owner
  out.writeUInt16BE(TYPE_OPT, offset + 1);
  out.writeUInt16BE(EDNS_PAYLOAD, offset + 3);
  out[offset + 5] = extendedRcode;
  out[offset + 6] = 0; // version 0
  out.writeUInt16BE(0, offset + 7); // flags (DO clear: no DNSSEC)
  out.writeUInt16BE(0, offset + 9); // no options
}

/**
 * An error response (FORMERR, NOTIMP, SERVFAIL, REFUSED, BADVERS) for a query whose ID is
 * known. The question is echoed when it parsed; OPT is echoed when the query had one.
 */
export function buildErrorResponse(
  query: Buffer,
  rcode: number,
  questionEnd: number | null,
  ednsSize: number | null,
): Buffer {
  const withOpt = ednsSize !== null || rcode === RCODE_BADVERS;
  const echoed = questionEnd ?? HEADER_LENGTH;
  const out = Buffer.allocUnsafe(echoed + (withOpt ? OPT_RECORD_LENGTH : 0));
  query.copy(out, 0, 0, echoed);
  out[2] = 0x80 | ((query[2] as number) & 0x79); // keep opcode and RD
  out[3] = 0x80 | ((query[3] as number) & 0x10) | (rcode & 0x0f);
  out.writeUInt16BE(questionEnd === null ? 0 : 1, 4);
  out.writeUInt32BE(0, 6); // an, ns
  out.writeUInt16BE(withOpt ? 1 : 0, 10);
  if (withOpt) writeOpt(out, echoed, rcode >> 4);
  return out;
}
