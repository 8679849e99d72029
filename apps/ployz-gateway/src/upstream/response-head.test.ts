import { describe, expect, it } from 'vitest';
import { parseResponseHead } from './response-head.ts';

describe('parseResponseHead', () => {
  it('reads status, headers and framing', () => {
    const h = parseResponseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\nconnection: Keep-Alive');
    expect(h.invalid).toBeUndefined();
    expect(h.status).toBe(200);
    expect(h.minor).toBe(1);
    expect(h.contentLength).toBe(5);
    expect(h.keepAlive).toBe(true);
    expect(h.close).toBe(false);
    expect(h.headers).toEqual(['Content-Length', '5', 'X-A', 'b', 'connection', 'Keep-Alive']);
  });

  it('accepts a status line without a reason and chunked as the last coding', () => {
    const h = parseResponseHead('HTTP/1.1 204\r\ntransfer-encoding: gzip, chunked');
    expect(h.status).toBe(204);
    expect(h.chunked).toBe(true);
    expect(h.close).toBe(false);
  });

  it('treats a transfer-encoding without chunked last as close-delimited', () => {
    const h = parseResponseHead('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip');
    expect(h.chunked).toBe(false);
    expect(h.close).toBe(true);
  });

  it('refuses conflicting or malformed lengths, folding and bad status lines', () => {
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2').invalid).toBe(
      'conflicting content-length',
    );
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 1').invalid).toBe(
      undefined,
    );
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: -1').invalid).toBe('bad content-length');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\ncontent-length: 1x').invalid).toBe('bad content-length');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nx-a: 1\r\n folded').invalid).toBe('obsolete header folding');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nx-a : 1').invalid).toBe('whitespace before colon');
    expect(parseResponseHead('HTTP/1.1 200 OK\r\nno colon').invalid).toBe('malformed header line');
    expect(parseResponseHead('HTTP/2.0 200 OK').invalid).toBe('malformed status line');
    expect(parseResponseHead('HTTP/1.1 2x0 OK').invalid).toBe('malformed status code');
    expect(parseResponseHead('ICY 200 OK').invalid).toBe('malformed status line');
  });

  it('notes HTTP/1.0 (no keep-alive unless asked)', () => {
    expect(parseResponseHead('HTTP/1.0 200 OK').minor).toBe(0);
    expect(parseResponseHead('HTTP/1.0 200 OK\r\nConnection: keep-alive').keepAlive).toBe(true);
  });
});
