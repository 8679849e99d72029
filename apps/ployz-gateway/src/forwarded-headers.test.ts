import { describe, expect, it } from 'vitest';
import {
  headerObject,
  plainUpstreamHead,
  scanRequestHeaders,
  scanResponseHeaders,
} from './forwarded-headers.ts';
import { type PlainRequestHead, parsePlainRequestHead, plainRawHeaders } from './request-head.ts';

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i] as string, flat[i + 1] as string]);
  return out;
}

describe('request headers', () => {
  it('drops hop-by-hop and Connection-listed headers, appends X-Forwarded-For, sets proto and host', () => {
    const scan = scanRequestHeaders(
      [
        'Host',
        'Example.com',
        'Connection',
        'keep-alive, X-Secret',
        'X-Secret',
        's',
        'Keep-Alive',
        '5',
        'TE',
        'trailers',
        'Upgrade',
        'h2c',
        'X-Forwarded-For',
        '1.1.1.1',
        'X-Forwarded-Proto',
        'https',
        'X-Forwarded-Host',
        'forged',
        'Accept',
        '*/*',
      ],
      '10.0.0.9',
      'http',
      false,
    );
    expect(pairs(scan.headers)).toEqual([
      ['Host', 'Example.com'],
      ['Accept', '*/*'],
      ['x-forwarded-for', '1.1.1.1, 10.0.0.9'],
      ['x-forwarded-proto', 'http'],
      ['x-forwarded-host', 'Example.com'],
    ]);
    expect(scan).toMatchObject({ host: 'Example.com', hasBody: false, invalid: undefined });
  });

  it('keeps Connection/Upgrade for upgrades, detects bodies and duplicate Host', () => {
    const up = scanRequestHeaders(
      ['Host', 'a', 'Connection', 'Upgrade', 'Upgrade', 'websocket'],
      undefined,
      'https',
      true,
    );
    expect(pairs(up.headers).slice(0, 3)).toEqual([
      ['Host', 'a'],
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
    ]);
    expect(scanRequestHeaders(['Host', 'a', 'Content-Length', '5'], '', 'http', false).hasBody).toBe(true);
    expect(scanRequestHeaders(['Host', 'a', 'Content-Length', '0'], '', 'http', false).hasBody).toBe(false);
    expect(scanRequestHeaders(['Host', 'a', 'Transfer-Encoding', 'chunked'], '', 'http', false).hasBody).toBe(
      true,
    );
    expect(scanRequestHeaders(['Host', 'a', 'host', 'b'], '', 'http', false).invalid).toBe(
      'more than one Host header',
    );
  });

  it('unmaps IPv4-mapped client addresses', () => {
    const scan = scanRequestHeaders(['Host', 'a'], '::ffff:192.0.2.7', 'http', false);
    expect(pairs(scan.headers)).toContainEqual(['x-forwarded-for', '192.0.2.7']);
  });

  it('turns HTTP/2 pseudo-headers into Host', () => {
    const scan = scanRequestHeaders(
      [':method', 'GET', ':authority', 'a.test', ':path', '/', 'accept', '*/*'],
      '::1',
      'https',
      false,
    );
    expect(scan.host).toBe('a.test');
    expect(pairs(scan.headers)).toContainEqual(['host', 'a.test']);
    expect(pairs(scan.headers).some(([name]) => name.startsWith(':'))).toBe(false);
  });
});

describe('response headers', () => {
  it('drops hop-by-hop and transfer-encoding, notes Date, folds repeats for HTTP/2', () => {
    const scan = scanResponseHeaders([
      'Date',
      'x',
      'Connection',
      'keep-alive',
      'Keep-Alive',
      'timeout=5',
      'Transfer-Encoding',
      'chunked',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
    ]);
    expect(scan.hasDate).toBe(true);
    expect(pairs(scan.headers)).toEqual([
      ['Date', 'x'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
    ]);
    expect(headerObject(scan.headers)).toEqual({ date: 'x', 'set-cookie': ['a=1', 'b=2'] });
  });
});

describe('plain heads forwarded as received', () => {
  /** Header lines of a head as a flat list (values trimmed), request/status line skipped. */
  function lines(head: string): string[] {
    const out: string[] = [];
    for (const line of head.split('\r\n').slice(1)) {
      if (line === '') continue;
      const colon = line.indexOf(':');
      out.push(line.slice(0, colon), line.slice(colon + 1).trim());
    }
    return out;
  }

  it.each([
    ['GET / HTTP/1.1\r\nHost: example.com'],
    ['GET /a?b HTTP/1.1\r\nhost:  Example.COM:8080 \r\nAccept: */*\r\nCookie: a=b; c=d\r\nContent-Length: 0'],
    ['DELETE /x HTTP/1.1\r\nUser-Agent: t\r\nHost: h\r\nX-Empty:'],
    ['GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: h\r\nKeep-Alive: 5\r\nAccept: */*'],
    [
      'GET / HTTP/1.1\r\nHost: h\r\nTE: trailers\r\nTrailer: x\r\nProxy-Connection: close\r\nConnection: close',
    ],
    [
      'GET / HTTP/1.1\r\nX-Forwarded-For: 1.1.1.1\r\nHost: h\r\nX-Forwarded-Proto: https\r\n' +
        'x-forwarded-host: evil\r\nX-Forwarded-For: 2.2.2.2\r\nA: 1',
    ],
  ])('adds and leaves out exactly what scanRequestHeaders would: %j', (text) => {
    const head = parsePlainRequestHead(text) as PlainRequestHead;
    expect(head.verbatim).toBe(true);
    const scan = scanRequestHeaders(plainRawHeaders(head), '::ffff:10.1.2.3', 'http', false);
    const forwarded = plainUpstreamHead(
      head.text,
      head.drop,
      head.host,
      head.forwardedFor,
      '::ffff:10.1.2.3',
      'http',
    );
    expect(forwarded.endsWith('\r\n\r\n')).toBe(true);
    expect(forwarded.startsWith(text.slice(0, text.indexOf('\r\n')))).toBe(true);
    expect(lines(forwarded)).toEqual(scan.headers);
  });
});
