import { describe, expect, it } from 'vitest';
import { isValidHost, normalizeTarget } from './request-target.ts';

describe('normalizeTarget (RFC 3986 §6.2.2)', () => {
  it('keeps normal targets as they are (the same string)', () => {
    for (const t of ['/', '/a/b', '/a/b/', '/a.b/c..d', '/a?x=/../y', '/a//b', '/%2F', '/a%2Fb']) {
      expect(normalizeTarget(t)).toBe(t);
    }
  });

  it('removes dot-segments', () => {
    expect(normalizeTarget('/api/../secret')).toBe('/secret');
    expect(normalizeTarget('/x/../api/secret')).toBe('/api/secret');
    expect(normalizeTarget('/a/./b/.')).toBe('/a/b/');
    expect(normalizeTarget('/a/b/..')).toBe('/a/');
    expect(normalizeTarget('/../../x')).toBe('/x');
    expect(normalizeTarget('/a/../b?q=/../c')).toBe('/b?q=/../c');
  });

  it('decodes escaped unreserved characters before removing dot-segments, never %2F', () => {
    expect(normalizeTarget('/api/%2e%2e/secret')).toBe('/secret');
    expect(normalizeTarget('/api/%2E./secret')).toBe('/secret');
    expect(normalizeTarget('/%61%7E%2d')).toBe('/a~-');
    expect(normalizeTarget('/api%2f..%2fsecret')).toBe('/api%2F..%2Fsecret');
    expect(normalizeTarget('/a/%2F../b')).toBe('/a/%2F../b');
    expect(normalizeTarget('/%e2%82%ac')).toBe('/%E2%82%AC');
  });

  it('refuses a % without two hex digits', () => {
    expect(normalizeTarget('/a%')).toBeUndefined();
    expect(normalizeTarget('/a%2')).toBeUndefined();
    expect(normalizeTarget('/a%zz')).toBeUndefined();
    expect(normalizeTarget('/a?%zz')).toBe('/a?%zz');
  });
});

describe('isValidHost (RFC 9112 §3.2)', () => {
  it('takes names, IPv6 literals, a valid port and a trailing dot', () => {
    for (const h of [
      'example.com',
      'example.com.',
      'a:80',
      'A.B:65535',
      '127.0.0.1:8080',
      '[::1]',
      '[::1]:443',
      '[2001:db8::1]',
      'x_y-z~',
    ]) {
      expect(isValidHost(h), h).toBe(true);
    }
  });

  it('refuses a bad port, brackets without IPv6, user information, lists and empty values', () => {
    for (const h of [
      '',
      'name:abc',
      'name:',
      'name:65536',
      'name:123456',
      '[name]',
      '[::1',
      '[1]',
      'name:80@evil',
      'me@name',
      'a, b',
      'a,b',
      'a b',
      ':80',
      'a%2eb',
      'é.com',
    ]) {
      expect(isValidHost(h), h).toBe(false);
    }
  });
});
