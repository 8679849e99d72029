/**
 * docs/errors.md lists every code of the registry, each with what to do, and nothing else; its exit
 * status table is the one of exit-status.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EXIT_STATUS, exitStatus } from '../src/index.ts';

const doc = readFileSync(join(import.meta.dirname, '..', '..', '..', 'docs/errors.md'), 'utf8');
const documented = [...doc.matchAll(/^### ([A-Z][A-Z0-9_]*)$/gm)].map((m) => m[1]);

describe('docs/errors.md', () => {
  it('documents exactly the codes of the registry', () => {
    expect([...documented].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('says what to do for each code', () => {
    for (const code of documented) {
      const section =
        doc
          .split(`### ${code}\n`)[1]
          ?.split(/\n#{2,3} /)[0]
          ?.trim() ?? '';
      expect(section.length, code).toBeGreaterThan(30);
    }
  });
});

describe('docs/errors.md exit status table', () => {
  const rows = new Map(
    [...doc.matchAll(/^\| (\d+) \| [^|]+ \| ([^|]+) \|$/gm)].map((m) => [
      Number(m[1]),
      [...(m[2] ?? '').matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((c) => c[1]).sort(),
    ]),
  );

  it('has a row for every exit status', () => {
    expect([...rows.keys()].sort()).toEqual(Object.values(EXIT_STATUS).sort());
  });

  it('puts each code in the row of its exit status', () => {
    for (const status of Object.values(EXIT_STATUS)) {
      const codes = Object.keys(ERROR_CODES).filter(
        (c) => exitStatus(c as keyof typeof ERROR_CODES) === status,
      );
      expect(rows.get(status), `exit ${status}`).toEqual(codes.sort());
    }
  });
});
