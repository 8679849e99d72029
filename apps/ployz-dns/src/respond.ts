/**
 * The pure part of answering one packet: what to send back for these bytes, from this source,
 * with this answer table. No I/O, never throws; the server does the sending and forwarding.
 */
import { type AnswerTable, lookup } from './answers.ts';
import {
  buildErrorResponse,
  buildResponse,
  CLASS_ANY,
  CLASS_IN,
  type ParsedQuery,
  parseQuery,
  questionKey,
  RCODE_BADVERS,
  RCODE_NXDOMAIN,
  RCODE_REFUSED,
  RCODE_SERVFAIL,
  TYPE_AXFR,
  TYPE_IXFR,
  udpLimit,
} from './wire.ts';

export type Outcome =
  | { kind: 'answer'; response: Buffer; nxdomain: boolean }
  /** `internal`: answering threw (a bug, not the packet's fault); answered SERVFAIL. */
  | { kind: 'error'; response: Buffer; rcode: number; internal?: true }
  | { kind: 'forward'; query: ParsedQuery }
  | { kind: 'drop' };

/**
 * @param ready false before the first projection: zone names then answer SERVFAIL rather than
 *   claiming they do not exist.
 * @param udp true for UDP (answers are truncated to the requester's size), false for TCP.
 */
export function respond(
  table: AnswerTable,
  ready: boolean,
  msg: Buffer,
  sourceIp: string,
  udp: boolean,
): Outcome {
  try {
    const parsed = parseQuery(msg);
    if (parsed.kind === 'drop') return { kind: 'drop' };
    if (parsed.kind === 'reject') {
      return {
        kind: 'error',
        rcode: parsed.rcode,
        response: buildErrorResponse(msg, parsed.rcode, parsed.questionEnd, parsed.ednsSize),
      };
    }
    if (parsed.ednsVersion !== 0) {
      return {
        kind: 'error',
        rcode: RCODE_BADVERS,
        response: buildErrorResponse(msg, RCODE_BADVERS, parsed.questionEnd, parsed.ednsSize),
      };
    }
    // Zone transfers are refused for every name: the zone is served, never handed out or proxied.
    if (parsed.qtype === TYPE_AXFR || parsed.qtype === TYPE_IXFR) {
      return {
        kind: 'error',
        rcode: RCODE_REFUSED,
        response: buildErrorResponse(msg, RCODE_REFUSED, parsed.questionEnd, parsed.ednsSize),
      };
    }
    const found = lookup(table, questionKey(msg, parsed.nameEnd), parsed.qtype, sourceIp);
    if (found === null) return { kind: 'forward', query: parsed };
    const rcode =
      parsed.qclass !== CLASS_IN && parsed.qclass !== CLASS_ANY
        ? RCODE_REFUSED
        : ready
          ? null
          : RCODE_SERVFAIL;
    if (rcode !== null) {
      return {
        kind: 'error',
        rcode,
        response: buildErrorResponse(msg, rcode, parsed.questionEnd, parsed.ednsSize),
      };
    }
    return {
      kind: 'answer',
      nxdomain: found.rcode === RCODE_NXDOMAIN,
      response: buildResponse(msg, parsed, found, udp ? udpLimit(parsed.ednsSize) : 0),
    };
  } catch {
    // A bug, not an input problem: answer SERVFAIL when the packet has an ID, else drop.
    if (msg.length < 12) return { kind: 'drop' };
    return {
      kind: 'error',
      rcode: RCODE_SERVFAIL,
      internal: true,
      response: buildErrorResponse(msg, RCODE_SERVFAIL, null, null),
    };
  }
}
