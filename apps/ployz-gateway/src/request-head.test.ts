import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type PlainRequestHead, parsePlainRequestHead, plainRawHeaders } from './request-head.ts';

const BASE = 'GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*';

describe('parsePlainRequestHead', () => {
  it('takes a plain GET: method, target, host, headers in order, values trimmed', () => {
    const text =
      'GET /a/b?c=d HTTP/1.1\r\nHost:  example.com \r\nX-Two:  spaced \t\r\nX-Two: again\r\nEmpty:';
    const head = parsePlainRequestHead(text);
    expect(head).toEqual({
      method: 'GET',
      target: '/a/b?c=d',
      text,
      host: 'example.com',
      close: false,
      verbatim: true,
      drop: [],
      forwardedFor: undefined,
    });
    expect(plainRawHeaders(head as PlainRequestHead)).toEqual([
      'Host',
      'example.com',
      'X-Two',
      'spaced',
      'X-Two',
      'again',
      'Empty',
      '',
    ]);
  });

  it.each([
    ['Connection: keep-alive'],
    ['Connection: Keep-Alive, close'],
    ['Keep-Alive: timeout=5'],
    ['TE: trailers'],
    ['Trailer: x'],
    ['Proxy-Connection: close'],
    ['X-Forwarded-For: 10.0.0.1'],
    ['x-forwarded-HOST: a'],
    ['X-Forwarded-Proto: https'],
  ])('forwards a head with `%s` as received less that line', (line) => {
    const text = `${BASE}\r\n${line}\r\nX-After: 1`;
    const head = parsePlainRequestHead(text) as PlainRequestHead;
    expect(head.verbatim).toBe(true);
    expect(head.drop).toEqual([BASE.length, BASE.length + 2 + line.length]);
  });

  it.each([['Connection: keep-alive, X-Secret'], ['Host: second.example']])(
    'marks a head with `%s` for the full rewrite',
    (line) => {
      expect(parsePlainRequestHead(`${BASE}\r\n${line}`)?.verbatim).toBe(false);
    },
  );

  it('carries received X-Forwarded-For values, in order', () => {
    const head = parsePlainRequestHead(
      `${BASE}\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for:  2.2.2.2, 3.3.3.3 `,
    );
    expect(head?.forwardedFor).toBe('1.1.1.1, 2.2.2.2, 3.3.3.3');
  });

  it('notes Connection: close and takes Content-Length: 0', () => {
    const head = parsePlainRequestHead(
      'DELETE /x HTTP/1.1\r\nhost: a\r\nConnection: Keep-Alive, Close\r\ncontent-length: 0',
    );
    expect(head?.close).toBe(true);
    expect(head?.method).toBe('DELETE');
  });

  // Every one of these is node:http's to answer (a body, an upgrade, another version, a refusal).
  const others: [string, string][] = [
    ['a body by length', `${BASE}\r\nContent-Length: 5`],
    ['two lengths', `${BASE}\r\nContent-Length: 0\r\nContent-Length: 0`],
    ['a chunked body', `${BASE}\r\nTransfer-Encoding: chunked`],
    ['an upgrade', `${BASE}\r\nConnection: Upgrade\r\nUpgrade: websocket`],
    ['an Upgrade header alone', `${BASE}\r\nUpgrade: h2c`],
    ['Expect', `${BASE}\r\nExpect: 100-continue`],
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a'],
    ['HTTP/2 preface', 'PRI * HTTP/2.0'],
    ['no Host', 'GET / HTTP/1.1\r\nAccept: */*'],
    ['absolute-form target', 'GET http://a/ HTTP/1.1\r\nHost: a'],
    ['asterisk target', 'OPTIONS * HTTP/1.1\r\nHost: a'],
    ['lowercase method', 'get / HTTP/1.1\r\nHost: a'],
    ['a fragment', 'GET /#x HTTP/1.1\r\nHost: a'],
    ['a control byte in the target', 'GET /\x01 HTTP/1.1\r\nHost: a'],
    ['a non-ASCII target', 'GET /\xe9 HTTP/1.1\r\nHost: a'],
    ['two spaces', 'GET  / HTTP/1.1\r\nHost: a'],
    ['trailing text after the version', 'GET / HTTP/1.1x\r\nHost: a'],
    ['obsolete line folding', `${BASE}\r\nX-A: 1\r\n 2`],
    ['space before the colon', `${BASE}\r\nX-A : 1`],
    ['a bare LF in a value', `${BASE}\r\nX-A: 1\nX-B: 2`],
    ['a bare CR in a value', `${BASE}\r\nX-A: 1\r2`],
    ['NUL in a value', `${BASE}\r\nX-A: 1\x002`],
    ['DEL in a value', `${BASE}\r\nX-A: 1\x7f`],
    ['a line without a colon', `${BASE}\r\nX-A`],
    ['an empty name', `${BASE}\r\n: 1`],
    ['a bracket in a name', `${BASE}\r\nX[A]: 1`],
    ['an empty line', 'GET / HTTP/1.1\r\n\r\nHost: a'],
  ];
  it.each(others)('leaves %s to node:http', (_label, text) => {
    expect(parsePlainRequestHead(text)).toBeUndefined();
  });

  it('leaves heads with too many header lines to node:http', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `X-${i}: ${i}`).join('\r\n');
    expect(parsePlainRequestHead(`${BASE}\r\n${lines}`)).toBeUndefined();
  });
});

/**
 * Differential check against node:http (llhttp): whatever the fast path accepts, node:http must
 * accept too, with the same method, target and headers. Mutated heads from a seeded generator.
 */
describe('parsePlainRequestHead agrees with node:http', () => {
  let server: http.Server;
  let port = 0;
  const seen = new Map<string, { method: string; url: string; raw: string[] } | 'error'>();

  beforeAll(async () => {
    server = http.createServer({ requireHostHeader: true }, (req, res) => {
      seen.set(req.headers['x-case'] as string, {
        method: req.method ?? '',
        url: req.url ?? '',
        raw: req.rawHeaders,
      });
      res.end();
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function viaNode(text: string): Promise<void> {
    return new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () =>
        socket.end(Buffer.from(`${text}\r\n\r\n`, 'latin1')),
      );
      socket.on('data', () => undefined);
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
    });
  }

  it('accepts nothing node:http refuses, and parses what it accepts identically', async () => {
    let seed = 0x5eed;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const bytes = [
      ' ',
      '\t',
      '\r',
      '\n',
      ':',
      '\0',
      '\x7f',
      '\xe9',
      '#',
      '/',
      '?',
      'A',
      'a',
      ',',
      '"',
      '(',
      ';',
    ];
    const lines = [
      'Connection: close',
      'Connection: keep-alive',
      'Content-Length: 0',
      'Accept-Encoding: gzip, br',
      'Cookie: a=b; c="d e"',
      'X-Forwarded-For: 10.0.0.1',
      'Cache-Control: no-cache',
    ];
    let accepted = 0;
    for (let n = 0; n < 400; n++) {
      let text = BASE;
      for (let k = rand(3); k > 0; k--) text += `\r\n${lines[rand(lines.length)]}`;
      for (let k = 1 + rand(3); k > 0; k--) {
        const at = rand(text.length + 1);
        const op = rand(3);
        if (op === 0) text = text.slice(0, at) + bytes[rand(bytes.length)] + text.slice(at);
        else if (op === 1) text = text.slice(0, at) + text.slice(at + 1);
        else text = text.slice(0, at) + text.charAt(at).toUpperCase() + text.slice(at + 1);
      }
      const ours = parsePlainRequestHead(`${text}\r\nX-Case: ${n}`);
      if (ours === undefined) continue;
      accepted++;
      await viaNode(`${text}\r\nX-Case: ${n}`);
      const theirs = seen.get(String(n));
      expect(theirs, `node:http refused a head the fast path took: ${JSON.stringify(text)}`).toBeDefined();
      expect(theirs).toEqual({ method: ours.method, url: ours.target, raw: plainRawHeaders(ours) });
    }
    // The generator must exercise the accepting side too, or the check proves nothing.
    expect(accepted).toBeGreaterThan(50);
  });

  it('agrees on heads mutated in method, target, version, header names, values and framing', async () => {
    let seed = 0x1e57;
    const rand = (n: number) => {
      // xorshift32: the low bits of a small LCG repeat too soon for picks from short lists
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pick = <T>(list: readonly T[]): T => list[rand(list.length)] as T;
    /** Mostly a plain value, one time in three an unusual one. */
    const vary = <T>(plain: readonly T[], odd: readonly T[]): T => (rand(3) === 0 ? pick(odd) : pick(plain));
    const methods = [
      ['GET', 'HEAD', 'OPTIONS', 'DELETE', 'PROPFIND', 'M-SEARCH'],
      ['CONNECT', 'POST', 'get', 'BREW', 'G ET', 'GET\t', ''],
    ] as const;
    const targets = [
      ['/', '/a/b?c=d', '/%2e%2e/x', '//x', '/a;b'],
      ['/a#frag', '*', 'http://example.com/x', 'example.com:443', '/\x7f', '/\xe9', '', '/a b'],
    ] as const;
    const versions = [
      ['HTTP/1.1'],
      ['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'http/1.1', 'HTTP/1.1 ', 'HTTP/11', 'HTTP/1.1\t'],
    ] as const;
    const names = [
      ['Accept', 'X-A', 'x-forwarded-for', 'Connection', 'Cookie'],
      ['X A', 'X\tA', 'X-\xe9', 'X"A', 'X:A', '', 'Upgrade', 'Transfer-Encoding', 'Expect', 'Host'],
    ] as const;
    const values = [
      ['1', '', ' padded ', 'a\tb', 'close', 'keep-alive', '10.0.0.1, 10.0.0.2', '\xe9'],
      ['upgrade', 'a\0b', 'a\x7fb', 'a\rb', 'chunked'],
    ] as const;
    const framing = [
      [[], ['Content-Length: 0']],
      [
        ['Content-Length: 5'],
        ['Content-Length: 0', 'Content-Length: 0'],
        ['Transfer-Encoding: chunked'],
        ['Content-Length: 0', 'Transfer-Encoding: chunked'],
        ['Expect: 100-continue'],
        ['Connection: Upgrade', 'Upgrade: websocket'],
        ['Content-Length: +0'],
        ['Content-Length:0'],
        ['Content-Length: 0 '],
      ],
    ] as const;
    const hosts = [
      ['Host: example.com', 'Host: a:80'],
      ['', 'Host: a\r\nHost: b', 'Host:', 'host : a'],
    ] as const;
    let accepted = 0;
    for (let n = 0; n < 600; n++) {
      const lines = [`${vary(...methods)} ${vary(...targets)} ${vary(...versions)}`];
      const host = vary(...hosts);
      if (host !== '') lines.push(host);
      for (let k = rand(3); k > 0; k--) lines.push(`${vary(...names)}: ${vary(...values)}`);
      lines.push(...vary<readonly string[]>(...framing));
      let text = lines.join('\r\n');
      if (rand(6) === 0) {
        const at = rand(text.length + 1);
        text = text.slice(0, at) + pick(['\r', '\n', '\0', ' ', '\r\n ']) + text.slice(at);
      }
      const ours = parsePlainRequestHead(`${text}\r\nX-Case: ${n}`);
      if (ours === undefined) continue;
      accepted++;
      await viaNode(`${text}\r\nX-Case: ${n}`);
      const theirs = seen.get(String(n));
      expect(theirs, `node:http refused a head the fast path took: ${JSON.stringify(text)}`).toBeDefined();
      expect(theirs).toEqual({ method: ours.method, url: ours.target, raw: plainRawHeaders(ours) });
    }
    expect(accepted).toBeGreaterThan(40);
  });
});
