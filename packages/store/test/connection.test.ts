import { startNats } from '@ployz/testkit';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { type ConnectionState, connectStore } from '../src/index.ts';

describe('connection', () => {
  it('a server that is down at start is STORE_UNAVAILABLE with a hint', async () => {
    await using nats = await startNats();
    await nats.kill();
    const err = await connectStore({ servers: nats.url, timeoutMs: 1000 }).catch((e: unknown) => e);
    expect(isPloyzError(err, 'STORE_UNAVAILABLE')).toBe(true);
    expect(String((err as Error).message)).toMatch(/ployz-nats/);
  });

  it('waitOnFirstConnect keeps trying until the server comes up', async () => {
    await using nats = await startNats();
    await nats.kill();
    const pending = connectStore({
      servers: nats.url,
      waitOnFirstConnect: true,
      minBackoffMs: 50,
      maxBackoffMs: 100,
    });
    await new Promise((r) => setTimeout(r, 500));
    await nats.restart();
    const conn = await pending;
    try {
      expect(conn.state).toBe('connected');
    } finally {
      await conn.close();
    }
  });

  it('reports disconnected → connected across a server restart and keeps reconnecting', async () => {
    await using nats = await startNats();
    const conn = await connectStore({ servers: nats.url, minBackoffMs: 50, maxBackoffMs: 100 });
    const states: ConnectionState[] = [];
    conn.onState((s) => states.push(s));
    try {
      await nats.kill();
      await expect.poll(() => conn.state, { timeout: 5000 }).not.toBe('connected');
      // Stay down for many backoff periods: the client must not give up.
      await new Promise((r) => setTimeout(r, 1500));
      expect(conn.state).not.toBe('closed');
      await nats.restart();
      await expect.poll(() => conn.state, { timeout: 10_000 }).toBe('connected');
      expect(states[0]).toBe('disconnected');
      expect(states.at(-1)).toBe('connected');
      expect(await conn.nc.rtt()).toBeGreaterThanOrEqual(0);
    } finally {
      await conn.close();
    }
    expect(conn.state).toBe('closed');
  });
});
