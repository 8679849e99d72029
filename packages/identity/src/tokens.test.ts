import { describe, expect, it } from 'vitest';
import { escapeToken, unescapeToken } from './tokens.ts';

describe('escapeToken', () => {
  it('keeps safe names and writes every other byte as =XX (the stored key form)', () => {
    expect(escapeToken('web-0_a')).toBe('web-0_a');
    expect(escapeToken('a.b')).toBe('a=2Eb');
    expect(escapeToken('a=b')).toBe('a=3Db');
    expect(escapeToken('a b*>')).toBe('a=20b=2A=3E');
    expect(escapeToken('é')).toBe('=C3=A9');
  });

  it('round-trips through unescapeToken', () => {
    for (const s of ['x*y >é', 'a.b.c', '=3D', 'plain']) expect(unescapeToken(escapeToken(s))).toBe(s);
  });

  it('refuses an empty name', () => {
    expect(() => escapeToken('')).toThrow(/empty/);
  });
});
