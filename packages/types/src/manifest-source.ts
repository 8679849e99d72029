/**
 * Source positions for manifest issues. JSON: a small scanner that finds the first syntax
 * error (JSON.parse's own message may quote the input, which could be a secret) and maps each
 * value's path to its offset. TOML: smol-toml reports syntax positions itself; for schema
 * issues a line scanner maps table headers and keys to lines (best effort: the nearest known
 * ancestor of a path gives the line).
 */
import { formatPath, type PathSegment } from './manifest-issues.ts';

export interface SourcePosition {
  line: number;
  column: number;
}

export function positionAt(text: string, offset: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: Math.min(offset, text.length) - lineStart + 1 };
}

export type JsonScan =
  | { ok: true; offsets: Map<string, number> }
  | { ok: false; offset: number; message: string };

class JsonSyntax extends Error {
  readonly offset: number;
  constructor(offset: number, message: string) {
    super(message);
    this.offset = offset;
  }
}

/** Scans JSON text; never throws. Offsets are keyed by formatted path. */
export function scanJson(text: string): JsonScan {
  const offsets = new Map<string, number>();
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++;
  };
  const fail = (message: string): never => {
    throw new JsonSyntax(i, message);
  };
  const str = (): string => {
    const start = i;
    i++; // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        try {
          return JSON.parse(text.slice(start, i)) as string;
        } catch {
          i = start;
          return fail('invalid escape in string');
        }
      }
      if (c === 92) i += 2;
      else if (c < 0x20) return fail('control character in string');
      else i++;
    }
    i = start;
    return fail('unterminated string');
  };
  const value = (path: PathSegment[], depth: number): void => {
    if (depth > 200) fail('document nests too deeply');
    ws();
    offsets.set(formatPath(path), i);
    const c = text.charAt(i);
    if (c === '{') {
      i++;
      ws();
      if (text.charAt(i) === '}') {
        i++;
        return;
      }
      const keys = new Set<string>();
      for (;;) {
        ws();
        if (text.charAt(i) !== '"') fail('expected a quoted property name');
        const keyAt = i;
        const key = str();
        if (keys.has(key)) {
          i = keyAt;
          fail(`duplicate key ${JSON.stringify(key.slice(0, 64))}`);
        }
        keys.add(key);
        ws();
        if (text.charAt(i) !== ':') fail("expected ':' after a property name");
        i++;
        value([...path, key], depth + 1);
        ws();
        if (text.charAt(i) === ',') {
          i++;
          continue;
        }
        if (text.charAt(i) === '}') {
          i++;
          return;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text.charAt(i) === ']') {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value([...path, n], depth + 1);
        ws();
        if (text.charAt(i) === ',') {
          i++;
          continue;
        }
        if (text.charAt(i) === ']') {
          i++;
          return;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const lit = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(
      text.slice(i, i + 400),
    );
    if (lit === null) fail(i >= text.length ? 'unexpected end of input' : 'unexpected character');
    i += lit?.[0].length ?? 0;
  };
  try {
    value([], 0);
    ws();
    if (i < text.length) fail('unexpected content after the document');
    return { ok: true, offsets };
  } catch (e) {
    if (e instanceof JsonSyntax) return { ok: false, offset: e.offset, message: e.message };
    return { ok: false, offset: 0, message: 'not valid JSON' };
  }
}

const TOML_HEADER = /^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$/;
const TOML_KEY = /^\s*([A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*([A-Za-z0-9_.-]+))?\s*=/;

function tomlKeyParts(raw: string): string[] {
  const parts: string[] = [];
  const re = /\s*([A-Za-z0-9_-]+|"((?:[^"\\]|\\.)*)"|'([^']*)')\s*(?:\.|$)/y;
  re.lastIndex = 0;
  while (re.lastIndex < raw.length) {
    const m = re.exec(raw);
    if (m === null) break;
    parts.push(m[2] ?? m[3] ?? m[1] ?? '');
  }
  return parts;
}

/** Maps formatted paths to positions of table headers and `key =` lines of a TOML document. */
export function scanTomlLines(text: string): Map<string, SourcePosition> {
  const lines = new Map<string, SourcePosition>([['', { line: 1, column: 1 }]]);
  const arrayCounts = new Map<string, number>();
  let table: PathSegment[] = [];
  // Resolves a dotted header against the array-of-tables seen so far: services.routes → services[1].routes
  const resolve = (keys: string[]): PathSegment[] => {
    const out: PathSegment[] = [];
    for (const key of keys) {
      out.push(key);
      const n = arrayCounts.get(formatPath(out));
      if (n !== undefined) out.push(n - 1);
    }
    return out;
  };
  const rows = text.split(/\r?\n/);
  for (const [n, row] of rows.entries()) {
    const header = TOML_HEADER.exec(row);
    if (header !== null) {
      const keys = tomlKeyParts(header[2] ?? '');
      if (header[1] === '[[') {
        const parent = resolve(keys.slice(0, -1));
        const arrayPath = [...parent, keys[keys.length - 1] ?? ''];
        const key = formatPath(arrayPath);
        const count = (arrayCounts.get(key) ?? 0) + 1;
        arrayCounts.set(key, count);
        // Forget counts of nested arrays belonging to the previous element.
        for (const k of [...arrayCounts.keys()]) if (k.startsWith(`${key}[`)) arrayCounts.delete(k);
        table = [...arrayPath, count - 1];
      } else table = resolve(keys);
      if (!lines.has(formatPath(table))) lines.set(formatPath(table), { line: n + 1, column: 1 });
      continue;
    }
    const kv = TOML_KEY.exec(row);
    if (kv !== null) {
      const first = kv[1] ?? '';
      const keys = [first.replace(/^["']|["']$/g, ''), ...(kv[2] ? kv[2].split('.') : [])];
      const path = formatPath([...table, ...keys]);
      if (!lines.has(path)) lines.set(path, { line: n + 1, column: row.length - row.trimStart().length + 1 });
    }
  }
  return lines;
}

/** The nearest known ancestor's position for a path (a path segment list, longest first). */
export function nearestPosition(
  path: PathSegment[],
  lookup: (formatted: string) => SourcePosition | undefined,
): SourcePosition | undefined {
  for (let len = path.length; len >= 0; len--) {
    const pos = lookup(formatPath(path.slice(0, len)));
    if (pos !== undefined) return pos;
  }
  return undefined;
}
