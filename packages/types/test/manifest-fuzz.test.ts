/**
 * Fuzzing the parser: random text, truncated manifests, random values and random structural
 * mutations never throw anything but a typed MANIFEST_SYNTAX / MANIFEST_INVALID PloyzError with
 * well-formed issues, and never echo an env value.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { stringify as toToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';
import {
  isPloyzError,
  MANIFEST_ISSUE_CODES,
  type ManifestFormat,
  type ManifestIssue,
  parseManifest,
  validateManifest,
} from '../src/index.ts';
import { baseInput } from './manifest-fixture.ts';

const hello = readFileSync(join(import.meta.dirname, '../../../examples/hello.toml'), 'utf8');

/** Runs `fn`; returns the issues when it threw the typed error, fails the test on anything else. */
function outcome(fn: () => unknown): ManifestIssue[] | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (e) {
    if (!isPloyzError(e)) throw new Error(`untyped error: ${String(e)}`, { cause: e });
    expect(['MANIFEST_SYNTAX', 'MANIFEST_INVALID']).toContain(e.code);
    const issues = e.details?.issues as ManifestIssue[];
    expect(issues.length).toBeGreaterThan(0);
    for (const issue of issues) {
      expect(Object.hasOwn(MANIFEST_ISSUE_CODES, issue.code)).toBe(true);
      expect(typeof issue.path).toBe('string');
      expect(issue.message.length).toBeGreaterThan(0);
      if (issue.line !== undefined) expect(issue.line).toBeGreaterThanOrEqual(1);
      if (issue.column !== undefined) expect(issue.column).toBeGreaterThanOrEqual(1);
    }
    return issues;
  }
}

const formats: ManifestFormat[] = ['toml', 'json'];

describe('parser fuzzing', () => {
  it('random text (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' })),
        fc.constantFrom(...formats),
        (text, format) => {
          outcome(() => parseManifest(text, { format }));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random text assembled from manifest tokens (property)', () => {
    const token = fc.constantFrom(
      '[[services]]',
      '[services.readiness]',
      '[[services.routes]]',
      '[[volumes]]',
      '[[phases]]',
      'namespace = "demo"',
      'name = "a"',
      'image = "i"',
      'ports = { http = 80 }',
      '{',
      '}',
      '[',
      ']',
      '"',
      '=',
      ',',
      '\n',
      ' ',
      'http',
      '1.5',
      '"services"',
      ':',
      'true',
      'null',
      '#',
      "'''",
      '"""',
      '\\u00',
      'inf',
      '1979-05-27',
      '0x1F',
      '-',
      '.',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), fc.constantFrom(...formats), (tokens, format) => {
        outcome(() => parseManifest(tokens.join(''), { format }));
      }),
      { numRuns: 300 },
    );
  });

  it('every truncation of valid manifests', () => {
    const texts: [string, ManifestFormat][] = [
      [hello, 'toml'],
      [toToml(baseInput()), 'toml'],
      [JSON.stringify(baseInput(), null, 2), 'json'],
    ];
    let rejected = 0;
    for (const [text, format] of texts) {
      for (let n = 0; n <= text.length; n++) {
        if (outcome(() => parseManifest(text.slice(0, n), { format })) !== 'ok') rejected++;
      }
      expect(outcome(() => parseManifest(text, { format }))).toBe('ok');
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('random JSON values and arbitrary JS values (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything()), (value) => {
        outcome(() => validateManifest(value));
        let text: string | undefined;
        try {
          text = JSON.stringify(value);
        } catch {
          text = undefined;
        }
        if (text !== undefined) outcome(() => parseManifest(text, { format: 'json' }));
      }),
      { numRuns: 300 },
    );
  });

  /** Replaces or deletes the value at a random path of the valid base input. */
  function mutate(root: unknown, choices: number[], replacement: unknown, remove: boolean): unknown {
    const copy = structuredClone(root) as Record<string, unknown>;
    let node: unknown = copy;
    for (const [depth, choice] of choices.entries()) {
      if (node === null || typeof node !== 'object') break;
      const keys = Object.keys(node);
      if (keys.length === 0) break;
      const key = keys[choice % keys.length] as string;
      const child = (node as Record<string, unknown>)[key];
      const last = depth === choices.length - 1 || child === null || typeof child !== 'object';
      if (last) {
        if (remove && !Array.isArray(node)) delete (node as Record<string, unknown>)[key];
        else (node as Record<string, unknown>)[key] = replacement;
        break;
      }
      node = child;
    }
    return copy;
  }

  it('random structural mutations of a valid manifest, as JSON and TOML (property)', () => {
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.array(fc.nat(20), { minLength: 1, maxLength: 6 }),
        fc.oneof(
          fc.jsonValue({ maxDepth: 2 }),
          fc.constantFrom('', 'Web', '/', 0, -1, 1.5, 70000, [], {}, null),
        ),
        fc.boolean(),
        (choices, replacement, remove) => {
          const input = mutate(baseInput(), choices, replacement, remove);
          const json = outcome(() => parseManifest(JSON.stringify(input), { format: 'json' }));
          if (json !== 'ok') rejected++;
          let toml: string | undefined;
          try {
            toml = toToml(input);
          } catch {
            toml = undefined; // null is not representable in TOML
          }
          if (toml !== undefined) outcome(() => parseManifest(toml, { format: 'toml' }));
        },
      ),
      { numRuns: 400 },
    );
    expect(rejected).toBeGreaterThan(50);
  });
});

describe('env values never appear in errors', () => {
  const secret = fc.stringMatching(/^[A-Za-z0-9+/]{12,24}$/).map((s) => `S3CR3T${s}`);

  it('not in schema errors, whatever else is wrong (property)', () => {
    fc.assert(
      fc.property(
        secret,
        fc.array(fc.nat(20), { minLength: 1, maxLength: 5 }),
        fc.jsonValue({ maxDepth: 1 }),
        (value, choices, replacement) => {
          const m = baseInput();
          (m.services[0] as Record<string, unknown>).env = { TOKEN: value, OTHER: value };
          const broken = structuredClone(m) as Record<string, unknown>;
          broken.namespace = 'Bad Namespace';
          // also break a random field somewhere
          const first = (broken.services as Record<string, unknown>[])[0] as Record<string, unknown>;
          const keys = Object.keys(first);
          first[keys[(choices[0] ?? 0) % keys.length] as string] = replacement;
          for (const text of [
            JSON.stringify(broken),
            toToml(JSON.parse(JSON.stringify(broken, (_k, v) => v ?? 'x'))),
          ]) {
            try {
              parseManifest(text, { format: text.startsWith('{') ? 'json' : 'toml' });
            } catch (e) {
              const all = `${(e as Error).message} ${JSON.stringify(e)}`;
              expect(all).not.toContain('S3CR3T');
            }
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('not in syntax errors on the env line itself (property)', () => {
    fc.assert(
      fc.property(secret, fc.nat(40), (value, cut) => {
        const toml = `namespace = "demo"\n[[services]]\nname = "a"\nimage = "i"\nenv = { TOKEN = "${value}" "x" }\n`;
        const json = `{"namespace":"demo","services":[{"name":"a","image":"i","env":{"TOKEN":"${value}" "x"}}]}`;
        const truncatedToml = toml.slice(0, toml.indexOf('S3CR3T') + 6 + cut);
        const truncatedJson = json.slice(0, json.indexOf('S3CR3T') + 6 + cut);
        for (const [text, format] of [
          [toml, 'toml'],
          [json, 'json'],
          [truncatedToml, 'toml'],
          [truncatedJson, 'json'],
        ] as const) {
          try {
            parseManifest(text, { format });
            expect.unreachable();
          } catch (e) {
            expect(isPloyzError(e, 'MANIFEST_SYNTAX')).toBe(true);
            expect(`${(e as Error).message} ${JSON.stringify(e)}`).not.toContain('S3CR3T');
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
