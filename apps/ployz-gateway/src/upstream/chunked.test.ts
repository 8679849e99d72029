import { describe, expect, it } from 'vitest';
import { ChunkedDecoder, type ChunkedSink } from './chunked.ts';

interface Decoded {
  body: string;
  ended: boolean;
  extra: boolean;
  error: string | undefined;
}

/** Feeds `pieces` to a fresh decoder, as one body, and says what came out. */
function decode(pieces: string[]): Decoded {
  const out: Decoded = { body: '', ended: false, extra: false, error: undefined };
  const sink: ChunkedSink = {
    data: (part) => {
      out.body += part.toString('latin1');
    },
    end: (extra) => {
      out.ended = true;
      out.extra = extra;
    },
    fail: (message) => {
      out.error = message;
    },
    live: () => !out.ended && out.error === undefined,
  };
  const decoder = new ChunkedDecoder();
  decoder.reset();
  for (const piece of pieces) {
    if (!sink.live()) break;
    decoder.decode(Buffer.from(piece, 'latin1'), sink);
  }
  return out;
}

const BODY = '5;ext="a b"\r\nhello\r\nA\r\n, chunked!\r\n0\r\nx-checksum: 42\r\n\r\n';

describe('ChunkedDecoder', () => {
  it('decodes a body whole, split at any one point, and byte by byte', () => {
    const expected = { body: 'hello, chunked!', ended: true, extra: false, error: undefined };
    expect(decode([BODY])).toEqual(expected);
    for (let i = 1; i < BODY.length; i++) expect(decode([BODY.slice(0, i), BODY.slice(i)])).toEqual(expected);
    expect(decode([...BODY])).toEqual(expected);
  });

  it('notes bytes after the last chunk (the connection is then not reused)', () => {
    expect(decode(['1\r\na\r\n0\r\n\r\nHTTP/1.1 200 OK'])).toMatchObject({
      body: 'a',
      ended: true,
      extra: true,
    });
  });

  it.each([
    ['zz\r\n', 'upstream sent a malformed chunk size'],
    ['\r\n', 'upstream sent a malformed chunk size'],
    ['1234567890abc\r\n', 'upstream sent a malformed chunk size'],
    ['5x\r\nhello\r\n', 'upstream sent a malformed chunk size'],
    ['5\r\nhelloXY', 'upstream chunk not followed by CRLF'],
    [`5;${'e'.repeat(2000)}`, 'chunk size line too long'],
    [`0\r\nx-a: ${'b'.repeat(70_000)}`, 'upstream trailers too large'],
  ])('refuses %j', (input, error) => {
    expect(decode([input])).toMatchObject({ ended: false, error });
  });

  it('waits for more input when a body is cut short', () => {
    expect(decode(['5\r\nhel'])).toEqual({ body: 'hel', ended: false, extra: false, error: undefined });
  });
});
