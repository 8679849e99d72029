/**
 * `ployzctl machine credentials rotate` on a running install (issue 13, docs/adr/0011-trust-model.md):
 * under traffic, every component moves to a new NKey without a recreated container or a failed
 * request; the old seeds are refused afterwards; the gateway still follows routing changes (a new
 * deploy serves), and a restarted ployzd connects with its new seed.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectStore } from '@ployz/store';
import { describe, expect, it } from 'vitest';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

const log = (m: string) => console.log(`[credentials] ${m}`);

describe('NATS credentials rotation (real ployzd, dockerd, nats)', () => {
  it('rotates every identity under load: nothing recreated, no request failed, old seeds refused', async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host }));
    expect((await d.deploy(v1)).code).toBe(0);
    await d.waitServing('v1');
    await h.waitFor(
      (s) => s.components.every((c) => c.component === 'nats' || c.health === 'healthy'),
      'healthchecks passing',
      60_000,
    );
    const seedOf = async (id: string) =>
      (await readFile(join(h.stateDir, 'nats-auth', `${id}.nk`), 'utf8')).trim();
    const oldSeeds = {
      ployzd: await seedOf('ployzd'),
      gateway: await seedOf('gateway'),
      dns: await seedOf('dns'),
    };
    const containersBefore = await h.containerIds();

    // Traffic through the gateway for the whole rotation.
    let stop = false;
    let requests = 0;
    const failures: string[] = [];
    const load = (async () => {
      while (!stop) {
        try {
          const r = await d.viaGateway();
          requests++;
          if (r.status !== 200 || !r.body.includes('(version v1)'))
            failures.push(`${r.status} ${r.body.slice(0, 80)}`);
        } catch (e) {
          requests++;
          failures.push(String(e));
        }
      }
    })();
    const rotated = await h.ctl('machine', 'credentials', 'rotate');
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    await load;
    log(`rotate exit ${rotated.code}; requests ${requests}, failed ${failures.length}`);
    expect(rotated.code, rotated.stdout + rotated.stderr).toBe(0);
    const result = rotated.json as {
      machine: string;
      public_keys: Record<string, string>;
      previous_public_keys: Record<string, string>;
      reconnected: { ployzd: boolean; gateway: boolean; dns: boolean };
    };
    expect(result.machine).toBe('m1');
    expect(result.reconnected).toEqual({ ployzd: true, gateway: true, dns: true });
    for (const id of ['ployzd', 'gateway', 'dns']) {
      expect(result.public_keys[id]).not.toBe(result.previous_public_keys[id]);
    }
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(10);
    // No container was recreated: seeds are files re-read at reconnect, the config is reloaded.
    expect(await h.containerIds()).toEqual(containersBefore);

    // The old seeds are refused, from the host's side of the guard.
    const servers = `nats://${h.subnet.replace(/0\/24$/, '2')}:4222`;
    for (const seed of Object.values(oldSeeds)) {
      await expect(connectStore({ servers, nkeySeed: seed, timeoutMs: 3000 })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
      });
    }
    expect(await seedOf('gateway')).not.toBe(oldSeeds.gateway);

    // The gateway follows routing changes on its new key, and ployzd deploys on its own.
    const v2 = await d.write('v2.toml', helloManifest({ version: 'v2', host: d.host }));
    expect((await d.deploy(v2)).code).toBe(0);
    await d.waitServing('v2');

    // A restarted ployzd connects with the seed on disk and adopts the data plane as it runs.
    const system = async () =>
      Object.fromEntries(
        Object.entries(await h.containerIds()).filter(([name]) =>
          ['networking', 'nats', 'gateway', 'dns'].some((c) => name === `${h.prefix}${c}`),
        ),
      );
    const systemBefore = await system();
    expect(Object.keys(systemBefore)).toHaveLength(4);
    await h.kill9();
    await h.start();
    await h.waitFor((s) => s.nats?.state === 'connected', 'nats connected after restart', 60_000);
    await d.engineReady();
    const st = await h.settledStatus();
    expect([st.reconcile?.recreated, st.reconcile?.created]).toEqual([0, 0]);
    expect(await system()).toEqual(systemBefore);
    await d.waitServing('v2');
  });
});
