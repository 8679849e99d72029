import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PLOYZ_VERSION, parseRegistryHost, releaseImageRef } from './release.ts';

const root = new URL('../../../', import.meta.url);
const versionOf = (path: string): unknown =>
  (JSON.parse(readFileSync(new URL(path, root), 'utf8')) as { version?: unknown }).version;

describe('the release version', () => {
  it('is the root package.json version, and every app and package repeats it', () => {
    expect(versionOf('package.json')).toBe(PLOYZ_VERSION);
    for (const dir of ['apps', 'packages']) {
      for (const name of readdirSync(new URL(`${dir}/`, root))) {
        expect(versionOf(`${dir}/${name}/package.json`), `${dir}/${name}/package.json`).toBe(PLOYZ_VERSION);
      }
    }
  });
});

describe('release image references', () => {
  it('names the registry, ployz/<image> and the version; without a registry the local build', () => {
    expect(releaseImageRef('gateway', '127.0.0.1:5000')).toBe(
      `127.0.0.1:5000/ployz/gateway:${PLOYZ_VERSION}`,
    );
    expect(releaseImageRef('dns', 'registry.example.com', '1.2.3')).toBe(
      'registry.example.com/ployz/dns:1.2.3',
    );
    expect(releaseImageRef('networking', null)).toBe('ployz/networking:latest');
  });

  it('takes host[:port] with a dot, a port or localhost; says what is wrong otherwise', () => {
    for (const ok of [
      '127.0.0.1:5000',
      'registry.example.com',
      'localhost',
      'localhost:5000',
      'r.example:443',
      '[::1]:5000',
      'r.example/',
    ]) {
      expect(parseRegistryHost(ok), ok).toMatchObject({ ok: true });
    }
    expect(parseRegistryHost('r.example/')).toEqual({ ok: true, host: 'r.example' });
    const bad: [string, RegExp][] = [
      ['http://127.0.0.1:5000', /not a URL: 127\.0\.0\.1:5000/],
      ['r.example/ployz', /no path: r\.example/],
      ['registry', /needs a dot, a port or localhost/],
      ['r.example:99999', /not host\[:port\]/],
      ['bad host', /not host\[:port\]/],
      ['', /not host\[:port\]/],
    ];
    for (const [text, message] of bad) {
      const r = parseRegistryHost(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(r.message, text).toMatch(message);
    }
  });
});
