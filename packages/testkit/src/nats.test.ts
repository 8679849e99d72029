import { existsSync } from 'node:fs';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, usernamePasswordAuthenticator } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { startNats } from './nats.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startNats', () => {
  it('auth-enabled mode: extra config with users refuses anonymous connections', async () => {
    await using nats = await startNats({
      extraConfig: 'authorization { users: [ { user: "t", password: "p" } ] }',
    });
    await expect(connect({ servers: nats.url })).rejects.toThrow(/authorization/i);
    const nc = await connect({ servers: nats.url, authenticator: usernamePasswordAuthenticator('t', 'p') });
    expect(nc.info?.auth_required).toBe(true);
    await nc.close();
  });

  it('starts a JetStream server that is gone after dispose', async () => {
    let pid = 0;
    let dir = '';
    {
      await using nats = await startNats();
      pid = nats.pid ?? 0;
      dir = nats.storeDir;
      const nc = await connect({ servers: nats.url });
      const jsm = await jetstreamManager(nc);
      const info = await jsm.getAccountInfo();
      expect(info.limits).toBeDefined();
      await nc.close();
      expect(alive(pid)).toBe(true);
    }
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it('restarts on the same port after kill -9', async () => {
    await using nats = await startNats();
    const first = nats.pid;
    await nats.kill();
    expect(alive(first ?? 0)).toBe(false);
    await nats.restart();
    expect(nats.pid).not.toBe(first);
    const nc = await connect({ servers: nats.url });
    await nc.flush();
    await nc.close();
  });
});
