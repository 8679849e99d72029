/** Every TOML and JSON block in docs/manifest.md parses (or fails exactly as it says it does). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPloyzError, MANIFEST_ISSUE_CODES, type ManifestIssue, parseManifest } from '../src/index.ts';

const root = join(import.meta.dirname, '../../..');
const doc = readFileSync(join(root, 'docs/manifest.md'), 'utf8');

interface Block {
  lang: string;
  info: string[];
  body: string;
  line: number;
}

function blocks(text: string): Block[] {
  const out: Block[] = [];
  const re = /^```(\S*)([^\n]*)\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(re)) {
    out.push({
      lang: m[1] ?? '',
      info: (m[2] ?? '').trim().split(/\s+/).filter(Boolean),
      body: m[3] ?? '',
      line: text.slice(0, m.index).split('\n').length,
    });
  }
  return out;
}

const all = blocks(doc);
const manifests = all.filter((b) => (b.lang === 'toml' || b.lang === 'json') && b.info.length === 0);

describe('docs/manifest.md', () => {
  it('has manifest examples in both formats', () => {
    expect(manifests.filter((b) => b.lang === 'toml').length).toBeGreaterThanOrEqual(10);
    expect(manifests.filter((b) => b.lang === 'json').length).toBeGreaterThanOrEqual(1);
  });

  it.each(manifests.map((b) => [`${b.lang} block at line ${b.line}`, b] as const))(
    '%s parses',
    (_name, b) => {
      const m = parseManifest(b.body, {
        format: b.lang as 'toml' | 'json',
        filename: `manifest.md:${b.line}`,
      });
      expect(m.services.length).toBeGreaterThan(0);
    },
  );

  it('the first example is examples/hello.toml, verbatim', () => {
    const hello = readFileSync(join(root, 'examples/hello.toml'), 'utf8');
    const withoutComments = hello
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    expect(manifests[0]?.body.trim()).toBe(withoutComments.trim());
  });

  it('the normalised block is exactly what parseManifest returns for hello', () => {
    const normalised = all.find((b) => b.lang === 'json' && b.info[0] === 'normalised');
    const hello = manifests[0];
    if (normalised === undefined || hello === undefined) throw new Error('blocks missing');
    expect(parseManifest(hello.body, { format: 'toml' })).toEqual(JSON.parse(normalised.body));
  });

  it('the JSON example is the same manifest as the TOML one', () => {
    const json = manifests.find((b) => b.lang === 'json');
    const hello = manifests[0];
    if (json === undefined || hello === undefined) throw new Error('blocks missing');
    expect(parseManifest(json.body, { format: 'json' })).toEqual(
      parseManifest(hello.body, { format: 'toml' }),
    );
  });

  it('invalid examples fail with the code and path they name', () => {
    const invalid = all.filter((b) => b.info[0] === 'invalid');
    expect(invalid.length).toBeGreaterThan(0);
    for (const b of invalid) {
      const [, code, path] = b.info;
      try {
        parseManifest(b.body, { format: b.lang as 'toml' | 'json' });
        expect.unreachable();
      } catch (e) {
        expect(isPloyzError(e, 'MANIFEST_INVALID')).toBe(true);
        const issues = (e as { details: { issues: ManifestIssue[] } }).details.issues;
        expect(issues.map((i) => [i.code, i.path])).toEqual([[code, path]]);
      }
    }
  });

  it('the issue example uses a real code', () => {
    const issue = all.find((b) => b.info[0] === 'issue');
    expect(Object.hasOwn(MANIFEST_ISSUE_CODES, JSON.parse(issue?.body ?? '{}').code)).toBe(true);
  });

  it('documents every issue code, and only real ones', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` *\|/gm)].map((m) => m[1]);
    expect(new Set(documented)).toEqual(new Set(Object.keys(MANIFEST_ISSUE_CODES)));
  });
});
