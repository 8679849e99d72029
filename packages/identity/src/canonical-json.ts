/**
 * Canonical JSON: the one text form every hash in Ployz is taken over. Object keys sorted by
 * UTF-16 code units (as RFC 8785 does), no whitespace, `undefined` object members dropped,
 * numbers in ECMAScript shortest round-trip form with -0 written as 0. Anything JSON cannot
 * represent exactly (NaN, Infinity, bigint, undefined in a list, functions, symbols, Dates,
 * Maps, class instances, cycles) is a PloyzError('INVALID_ARGUMENT') rather than a silent
 * coercion, so two different values never share a hash by accident.
 */
import { PloyzError } from '@ployz/types';

export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue | undefined };

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function reject(path: string, what: string): never {
  throw new PloyzError('INVALID_ARGUMENT', `canonical JSON cannot represent ${what} at ${path || '(root)'}`);
}

function write(value: unknown, path: string, seen: Set<object>, out: string[]): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      if (!Number.isFinite(value)) reject(path, String(value));
      out.push(Object.is(value, -0) ? '0' : JSON.stringify(value));
      return;
    case 'object':
      break;
    default:
      reject(path, typeof value);
  }
  if (value === null) {
    out.push('null');
    return;
  }
  if (seen.has(value)) reject(path, 'a cycle');
  seen.add(value);
  if (Array.isArray(value)) {
    out.push('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(',');
      const item: unknown = value[i];
      if (item === undefined) reject(`${path}[${i}]`, 'undefined');
      write(item, `${path}[${i}]`, seen, out);
    }
    out.push(']');
  } else {
    if (!isPlainObject(value)) reject(path, `a ${value.constructor?.name ?? 'non-plain'} object`);
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    out.push('{');
    keys.forEach((k, i) => {
      if (i > 0) out.push(',');
      out.push(JSON.stringify(k), ':');
      write(value[k], path ? `${path}.${k}` : k, seen, out);
    });
    out.push('}');
  }
  seen.delete(value);
}

export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, '', new Set(), out);
  return out.join('');
}
