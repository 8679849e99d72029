/**
 * `parseManifest(text, { filename | format })`: TOML or JSON text → normalised `Manifest`, or a
 * `PloyzError` (`MANIFEST_SYNTAX` or `MANIFEST_INVALID`) whose `details.issues` lists every
 * problem found. Pure: no I/O. Never throws anything else, and never echoes an env value.
 *
 * Length: ~470 lines on purpose — one pass over the manifest, so every problem is reported with
 * its position in one list; splitting per section would scatter that position bookkeeping.
 */
import { parse as parseToml, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { PloyzError } from './errors.ts';
import {
  ManifestInput,
  type PhaseInput,
  PhaseInput as PhaseInputSchema,
  type ServiceInput,
  ServiceInput as ServiceInputSchema,
  type VolumeInput,
  VolumeInput as VolumeInputSchema,
} from './manifest-input.ts';
import {
  formatPath,
  MANIFEST_ISSUE_CODES,
  type ManifestIssue,
  type ManifestIssueCode,
  type PathSegment,
} from './manifest-issues.ts';
import { normaliseManifest } from './manifest-normalise.ts';
import { checkManifestRules, type Indexed, type RawIssue } from './manifest-rules.ts';
import {
  nearestPosition,
  positionAt,
  type SourcePosition,
  scanJson,
  scanTomlLines,
} from './manifest-source.ts';
import type { Manifest } from './manifest-spec.ts';

export type ManifestFormat = 'toml' | 'json';

export interface ParseManifestOptions {
  /** Explicit format; otherwise taken from `filename` (.toml/.json), else sniffed from the text. */
  format?: ManifestFormat;
  /** Shown in issues and used to pick the format. */
  filename?: string;
}

export interface ManifestErrorDetails {
  file?: string;
  issues: ManifestIssue[];
}

/** Hard cap so a runaway file cannot stall the daemon. */
export const MANIFEST_MAX_BYTES = 1_000_000;

/** UTF-8 size of manifest text (no copy when even 3 bytes a character stays under the cap). */
function manifestBytes(text: string): number {
  return text.length * 3 <= MANIFEST_MAX_BYTES ? text.length : new TextEncoder().encode(text).length;
}

/**
 * Throws `MANIFEST_TOO_LARGE` (details: size, limit) when the text is over `MANIFEST_MAX_BYTES`.
 * ployzctl calls it before sending, the daemon in `parseManifest`. The estimate under the cap
 * may count characters instead of bytes; it is exact whenever it matters.
 */
export function assertManifestSize(text: string, file?: string): void {
  const size = manifestBytes(text);
  if (size <= MANIFEST_MAX_BYTES) return;
  throw new PloyzError(
    'MANIFEST_TOO_LARGE',
    `${file !== undefined ? `${file}: ` : ''}the manifest is ${size} bytes; the limit is ${MANIFEST_MAX_BYTES} bytes (split it into namespaces or move large values out)`,
    { details: { ...(file !== undefined ? { file } : {}), size, limit: MANIFEST_MAX_BYTES } },
  );
}

export function manifestFormatOf(options: ParseManifestOptions, text: string): ManifestFormat | null {
  if (options.format !== undefined) return options.format;
  const name = options.filename?.toLowerCase();
  if (name !== undefined && name !== '-' && /\.[a-z0-9]+$/.test(name)) {
    if (name.endsWith('.toml')) return 'toml';
    if (name.endsWith('.json')) return 'json';
    return null;
  }
  return /^\s*\{/.test(text) ? 'json' : 'toml';
}

function syntaxError(file: string | undefined, issue: Omit<ManifestIssue, 'file'>): PloyzError {
  const full: ManifestIssue = { ...issue, ...(file !== undefined ? { file } : {}) };
  const where = [file, issue.line, issue.column].filter((x) => x !== undefined).join(':');
  return new PloyzError('MANIFEST_SYNTAX', `${where ? `${where}: ` : ''}${issue.message}`, {
    details: { ...(file !== undefined ? { file } : {}), issues: [full] } satisfies ManifestErrorDetails,
  });
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date || (typeof value === 'object' && value.constructor?.name === 'TomlDate'))
    return 'a date';
  switch (typeof value) {
    case 'object':
      return 'a table';
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    default:
      return typeof value;
  }
}

function describeExpected(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a table';
    case 'array':
      return 'a list';
    case 'record':
      return 'a table';
    case 'int':
      return 'an integer';
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean (true or false)';
    default:
      return expected;
  }
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = Object.hasOwn(v, seg) ? (v as Record<string, unknown>)[seg as string] : undefined;
  }
  return v;
}

function isManifestIssueCode(value: unknown): value is ManifestIssueCode {
  return typeof value === 'string' && Object.hasOwn(MANIFEST_ISSUE_CODES, value);
}

interface SchemaDef {
  type: string;
  shape?: Record<string, z.core.$ZodType>;
  element?: z.core.$ZodType;
  valueType?: z.core.$ZodType;
  innerType?: z.core.$ZodType;
  out?: z.core.$ZodType;
}

const defOf = (schema: z.core.$ZodType) => schema._zod.def as SchemaDef;

function unwrapSchema(schema: z.core.$ZodType): z.core.$ZodType {
  let s = schema;
  for (let i = 0; i < 10; i++) {
    const def = defOf(s);
    const next = def.type === 'pipe' ? def.out : def.innerType;
    if (next === undefined) return s;
    s = next;
  }
  return s;
}

/** The field names the schema allows at `path` (an object there), for "did you mean". */
function allowedFieldsAt(schema: z.core.$ZodType, path: readonly PathSegment[]): string[] {
  let s: z.core.$ZodType | undefined = unwrapSchema(schema);
  for (const seg of path) {
    const def = defOf(s);
    if (def.type === 'object' && typeof seg === 'string') s = def.shape?.[seg];
    else if (def.type === 'array') s = def.element;
    else if (def.type === 'record') s = def.valueType;
    else return [];
    if (s === undefined) return [];
    s = unwrapSchema(s);
  }
  return Object.keys(defOf(s).shape ?? {});
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

function unknownFieldMessage(key: string, allowed: string[]): string {
  const close = allowed
    .map((name) => ({ name, d: editDistance(key.toLowerCase(), name) }))
    .filter((c) => c.d <= (c.name.length <= 3 ? 1 : 2))
    .sort((a, b) => a.d - b.d)[0];
  if (close !== undefined) return `unknown field \`${key}\`; did you mean \`${close.name}\`?`;
  if (allowed.length > 0) return `unknown field \`${key}\`; allowed here: ${allowed.join(', ')}`;
  return `unknown field \`${key}\``;
}

/** Maps zod issues (relative to `root` at `prefix`) to raw manifest issues. */
function fromZod(
  issues: z.core.$ZodIssue[],
  root: unknown,
  prefix: PathSegment[],
  schema: z.core.$ZodType,
): RawIssue[] {
  const out: RawIssue[] = [];
  for (const issue of issues) {
    const rel = issue.path.map((p) => (typeof p === 'number' ? p : String(p)));
    const path = [...prefix, ...rel];
    switch (issue.code) {
      case 'custom': {
        const code = issue.params?.code;
        out.push({ code: isManifestIssueCode(code) ? code : 'VALUE_INVALID', path, message: issue.message });
        break;
      }
      case 'invalid_type': {
        const value = valueAt(root, rel);
        const field = rel[rel.length - 1];
        if (value === undefined) {
          out.push({
            code: 'REQUIRED',
            path,
            message: typeof field === 'string' ? `\`${field}\` is required` : 'a value is required',
          });
        } else {
          out.push({
            code: 'TYPE_INVALID',
            path,
            message: `expected ${describeExpected(issue.expected)}, got ${describeType(value)}`,
          });
        }
        break;
      }
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          out.push({
            code: 'UNKNOWN_FIELD',
            path: [...path, key],
            message: unknownFieldMessage(key, allowedFieldsAt(schema, rel)),
          });
        }
        break;
      case 'invalid_value':
        out.push({
          code: 'VALUE_INVALID',
          path,
          message: `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`,
        });
        break;
      case 'too_small':
      case 'too_big': {
        const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
        const op = issue.code === 'too_small' ? (issue.inclusive ? '>=' : '>') : issue.inclusive ? '<=' : '<';
        if (issue.origin === 'number' || issue.origin === 'int') {
          out.push({ code: 'OUT_OF_RANGE', path, message: `must be ${op} ${String(bound)}` });
        } else {
          const unit = issue.origin === 'string' ? 'characters' : 'items';
          out.push({ code: 'LENGTH_INVALID', path, message: `must have ${op} ${String(bound)} ${unit}` });
        }
        break;
      }
      case 'invalid_union':
        out.push({
          code: 'TYPE_INVALID',
          path,
          message: `${describeType(valueAt(root, rel))} is not allowed here`,
        });
        break;
      default:
        out.push({ code: 'VALUE_INVALID', path, message: 'this value is not valid here' });
    }
  }
  return out;
}

function validateItems<T>(
  schema: z.ZodType<T>,
  list: readonly unknown[] | undefined,
  name: string,
  issues: RawIssue[],
): Indexed<T>[] {
  const ok: Indexed<T>[] = [];
  for (const [index, item] of (list ?? []).entries()) {
    const r = schema.safeParse(item);
    if (r.success) ok.push({ index, value: r.data });
    else issues.push(...fromZod(r.error.issues, item, [name, index], schema));
  }
  return ok;
}

interface SourceInfo {
  file?: string;
  locate?: (path: PathSegment[]) => SourcePosition | undefined;
}

/** Issues with positions, in source order (stable for issues on one line). */
function finish(raw: RawIssue[], source: SourceInfo): ManifestIssue[] {
  const issues = raw.map((issue): ManifestIssue => {
    const pos = source.locate?.(issue.path);
    return {
      code: issue.code,
      path: formatPath(issue.path),
      message: issue.message,
      ...(source.file !== undefined ? { file: source.file } : {}),
      ...(pos !== undefined ? { line: pos.line, column: pos.column } : {}),
    };
  });
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function invalid(issues: ManifestIssue[], file: string | undefined): PloyzError {
  const first = issues[0];
  const head = first
    ? `${[file, first.line].filter((x) => x !== undefined).join(':')}${file || first.line ? ': ' : ''}${first.path || '(top level)'}: ${first.message}`
    : '';
  const more =
    issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new PloyzError('MANIFEST_INVALID', `the manifest does not validate: ${head}${more}`, {
    details: { ...(file !== undefined ? { file } : {}), issues } satisfies ManifestErrorDetails,
  });
}

function namesOf(list: readonly unknown[] | undefined, field: string): Set<string> {
  const names = new Set<string>();
  for (const item of list ?? []) {
    const name = valueAt(item, [field]);
    if (typeof name === 'string') names.add(name);
  }
  return names;
}

/** `__proto__` keys would be dropped silently by object copies; reject them up front. */
function reservedKeys(value: unknown, path: PathSegment[], out: RawIssue[], depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 64) return;
  for (const key of Object.keys(value)) {
    const child = (value as Record<string, unknown>)[key];
    if (key === '__proto__') {
      out.push({
        code: 'KEY_RESERVED',
        path: [...path, key],
        message: '"__proto__" cannot be used as a key',
      });
    } else reservedKeys(child, [...path, Array.isArray(value) ? Number(key) : key], out, depth + 1);
  }
}

function validateWith(data: unknown, source: SourceInfo): Manifest {
  const raw: RawIssue[] = [];
  reservedKeys(data, [], raw);
  if (raw.length > 0) throw invalid(finish(raw, source), source.file);
  const top = ManifestInput.safeParse(data);
  let namespace = '';
  let services: Indexed<ServiceInput>[] = [];
  let volumes: Indexed<VolumeInput>[] = [];
  let phases: Indexed<PhaseInput>[] = [];
  if (!top.success) raw.push(...fromZod(top.error.issues, data, [], ManifestInput));
  // Validate list items even when the top level has problems, so every issue is reported.
  const lists = (data !== null && typeof data === 'object' ? data : {}) as Record<string, unknown>;
  const list = (key: string) => {
    const v = Object.hasOwn(lists, key) ? lists[key] : undefined;
    return Array.isArray(v) ? v : undefined;
  };
  services = validateItems(ServiceInputSchema, list('services'), 'services', raw);
  volumes = validateItems(VolumeInputSchema, list('volumes'), 'volumes', raw);
  phases = validateItems(PhaseInputSchema, list('phases'), 'phases', raw);
  if (top.success) namespace = top.data.namespace;
  const declared = {
    services: namesOf(list('services'), 'name'),
    volumes: namesOf(list('volumes'), 'name'),
    phases: namesOf(list('phases'), 'id'),
  };
  raw.push(...checkManifestRules({ namespace, services, volumes, phases, declared }));
  if (raw.length > 0) throw invalid(finish(raw, source), source.file);
  return normaliseManifest({ namespace, services, volumes, phases });
}

/** Validates an already-decoded manifest value (e.g. JSON received over the local API). */
export function validateManifest(data: unknown, options: { filename?: string } = {}): Manifest {
  try {
    return validateWith(data, options.filename !== undefined ? { file: options.filename } : {});
  } catch (e) {
    if (e instanceof PloyzError) throw e;
    throw new PloyzError(
      'INTERNAL',
      'manifest validation failed unexpectedly (a Ployz bug; please report it)',
      { cause: e },
    );
  }
}

/** Parses and validates TOML or JSON manifest text. */
export function parseManifest(text: string, options: ParseManifestOptions = {}): Manifest {
  const file = options.filename;
  try {
    assertManifestSize(text, file);
    const format = manifestFormatOf(options, text);
    if (format === null) {
      throw syntaxError(file, {
        code: 'FORMAT_UNKNOWN',
        path: '',
        message: 'cannot tell the manifest format from the file name; use a .toml or .json file',
      });
    }
    const source: SourceInfo = file !== undefined ? { file } : {};
    let data: unknown;
    if (format === 'toml') {
      try {
        data = parseToml(text);
      } catch (e) {
        const line = e instanceof TomlError ? e.line : undefined;
        const column = e instanceof TomlError ? e.column : undefined;
        // Only the first line: the rest is a code excerpt that could show a secret.
        const reason =
          e instanceof TomlError ? (e.message.split('\n')[0] ?? '').slice(0, 200) : 'not valid TOML';
        throw syntaxError(file, {
          code: 'SYNTAX',
          path: '',
          message: reason.replace(/^Invalid TOML document: /, 'invalid TOML: '),
          ...(line !== undefined ? { line } : {}),
          ...(column !== undefined ? { column } : {}),
        });
      }
      let positions: Map<string, SourcePosition> | undefined;
      source.locate = (path) => {
        positions ??= scanTomlLines(text);
        const known = positions;
        return nearestPosition(path, (p) => known.get(p));
      };
    } else {
      const scan = scanJson(text);
      if (!scan.ok) {
        const pos = positionAt(text, scan.offset);
        throw syntaxError(file, {
          code: 'SYNTAX',
          path: '',
          message: `invalid JSON: ${scan.message}`,
          ...pos,
        });
      }
      try {
        data = JSON.parse(text);
      } catch {
        throw syntaxError(file, { code: 'SYNTAX', path: '', message: 'invalid JSON' });
      }
      source.locate = (path) =>
        nearestPosition(path, (p) => {
          const offset = scan.offsets.get(p);
          return offset === undefined ? undefined : positionAt(text, offset);
        });
    }
    return validateWith(data, source);
  } catch (e) {
    if (e instanceof PloyzError) throw e;
    throw new PloyzError(
      'INTERNAL',
      'manifest validation failed unexpectedly (a Ployz bug; please report it)',
      { cause: e },
    );
  }
}
