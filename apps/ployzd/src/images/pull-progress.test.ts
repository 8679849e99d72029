/** Pull lines folded into progress, and the engine's refusals sorted into why. Pure. */
import { describe, expect, it } from 'vitest';
import { PullTracker, pullAdvice, pullFailureOf } from './pull-progress.ts';

const lines = [
  { status: 'Pulling from team/app', id: '1.2' },
  { status: 'Pulling fs layer', progressDetail: {}, id: 'aaa' },
  { status: 'Already exists', progressDetail: {}, id: 'bbb' },
  { status: 'Waiting', progressDetail: {}, id: 'ccc' },
  { status: 'Downloading', progressDetail: { current: 100, total: 1000 }, id: 'aaa' },
  { status: 'Downloading', progressDetail: { current: 600, total: 1000 }, id: 'aaa' },
];

describe('PullTracker', () => {
  it('counts layers (the tag line is none), bytes so far and the announced total', () => {
    const t = new PullTracker();
    for (const l of lines) t.line(JSON.stringify(l));
    expect(t.progress).toEqual({ layers: 3, layers_done: 1, bytes: 600, total_bytes: 1000 });
    t.line(JSON.stringify({ status: 'Download complete', progressDetail: {}, id: 'aaa' }));
    t.line(JSON.stringify({ status: 'Downloading', progressDetail: { current: 50, total: 500 }, id: 'ccc' }));
    expect(t.progress).toEqual({ layers: 3, layers_done: 1, bytes: 1050, total_bytes: 1500 });
    t.line(JSON.stringify({ status: 'Pull complete', progressDetail: {}, id: 'aaa' }));
    t.line(JSON.stringify({ status: 'Pull complete', progressDetail: {}, id: 'ccc' }));
    t.line(JSON.stringify({ status: 'Digest: sha256:abc' }));
    expect(t.progress).toEqual({ layers: 3, layers_done: 3, bytes: 1500, total_bytes: 1500 });
    expect(t.error).toBeNull();
  });

  it('keeps the error line, ignores blank and broken lines', () => {
    const t = new PullTracker();
    t.line('');
    t.line('{not json');
    t.line(JSON.stringify({ errorDetail: { message: 'manifest unknown' }, error: 'manifest unknown' }));
    expect(t.error).toBe('manifest unknown');
    expect(t.progress).toEqual({ layers: 0, layers_done: 0, bytes: 0, total_bytes: null });
  });
});

describe('pullFailureOf', () => {
  it.each([
    ['Get "http://127.0.0.1:5000/v2/": dial tcp 127.0.0.1:5000: connect: connection refused', 'unreachable'],
    ['Get "https://reg.example/v2/": dial tcp: lookup reg.example: no such host', 'unreachable'],
    ['Get "http://127.0.0.1:4040/v2/": net/http: request canceled (Client.Timeout exceeded)', 'unreachable'],
    ['Head "http://127.0.0.1:5000/v2/x/manifests/1": no basic auth credentials', 'unauthorized'],
    ['unauthorized: authentication required', 'unauthorized'],
    ['pull access denied for x, repository does not exist or may require docker login', 'unauthorized'],
    ['manifest for 127.0.0.1:5000/x:2 not found: manifest unknown: manifest unknown', 'not_found'],
    ['something else broke', 'failed'],
  ] as const)('%s → %s', (message, reason) => {
    expect(pullFailureOf(message)).toBe(reason);
  });

  it('advises registry login for unauthorized, naming the host', () => {
    expect(pullAdvice('unauthorized', '127.0.0.1:5000')).toMatch(/ployzctl registry login 127\.0\.0\.1:5000/);
  });
});
