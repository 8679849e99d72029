import { describe, expect, it } from 'vitest';
import { routeLines } from './status-output.ts';

describe('status output: routes', () => {
  it('names each conflicting route, who serves it and who does not', () => {
    expect(
      routeLines({
        conflicts: [{ id: 'hello.localhost', winner: 'demo/hello', loser: 'thief/hello' }],
        error: null,
      }),
    ).toEqual([
      'routes: 1 conflict(s); the gateway serves the first claimant only',
      '  hello.localhost: served by demo/hello, not by thief/hello',
    ]);
  });

  it('says when there are none, when they cannot be read, and nothing for an older daemon', () => {
    expect(routeLines({ conflicts: [], error: null })).toEqual(['routes: no conflicts']);
    expect(routeLines({ conflicts: [], error: 'NATS is not connected' })).toEqual([
      'routes: conflicts unknown (NATS is not connected)',
    ]);
    expect(routeLines(undefined)).toEqual([]);
    expect(routeLines(null)).toEqual([]);
  });
});
