import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Manifest, parseManifest } from '../src/index.ts';

const root = join(import.meta.dirname, '../../..');
const examplesDir = join(root, 'examples');

describe('examples/', () => {
  const files = readdirSync(examplesDir).filter((f) => f.endsWith('.toml') || f.endsWith('.json'));

  it('has at least hello.toml', () => {
    expect(files).toContain('hello.toml');
  });

  for (const file of files) {
    it(`parses ${file}`, () => {
      const manifest = parseManifest(readFileSync(join(examplesDir, file), 'utf8'), { filename: file });
      // The normalised form satisfies its own schema.
      expect(Manifest.parse(manifest)).toEqual(manifest);
      expect(manifest.services.length).toBeGreaterThan(0);
    });
  }

  it('hello.toml is the documented hello service', () => {
    const m = parseManifest(readFileSync(join(examplesDir, 'hello.toml'), 'utf8'), {
      filename: 'hello.toml',
    });
    expect(m.namespace).toBe('demo');
    const hello = m.services[0];
    expect(hello?.name).toBe('hello');
    expect(hello?.image).toBe('ployz/hello:latest');
    expect(hello?.ports).toEqual([{ name: 'http', port: 8080, protocol: 'tcp' }]);
    expect(hello?.routes).toEqual([
      { kind: 'http', hostnames: ['hello.localhost'], path: '/', port: 'http' },
    ]);
    expect(hello?.readiness).toMatchObject({ kind: 'http', path: '/healthz', port: 'http' });
    expect(hello?.placement).toEqual({ mode: 'replicated', replicas: 1, regions: [] });
  });
});
