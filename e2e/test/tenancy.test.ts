/**
 * Tenants on one machine (real ployzd, dockerd, nats, gateway): a namespace cannot claim another
 * namespace's hostname, and a manifest over the size limit is refused by the daemon's API itself.
 */
import { LocalApiClient } from '@ployz/protocol';
import { isPloyzError, MANIFEST_MAX_BYTES } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

interface StatusRow {
  deploy_id: string;
  namespace: string;
  state: string;
}

describe('tenancy', () => {
  it("namespace thief cannot claim demo's hostname: HOSTNAME_OWNED naming demo, nothing written, demo keeps serving", async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;
    const demo = await d.write('demo.toml', helloManifest({ version: 'v1', host: d.host }));
    const first = await d.deploy(demo);
    expect(first.code, JSON.stringify(first.lines.slice(-3))).toBe(0);
    await d.waitServing('v1');
    const statuses = await d.ctlJson<StatusRow[]>('deploy', 'ls');
    const workloads = await d.workloads();

    const thief = await d.write(
      'thief.toml',
      helloManifest({ version: 'stolen', host: d.host, namespace: 'thief' }),
    );
    const preview = await h.ctl('deploy', 'preview', '-f', thief);
    expect(preview.code).toBe(2);
    expect(preview.json).toMatchObject({
      error: {
        code: 'HOSTNAME_OWNED',
        details: {
          namespace: 'thief',
          conflicts: [{ route: d.host, service: 'hello', owner_namespace: 'demo', owner_service: 'hello' }],
        },
      },
    });

    const apply = await d.deploy(thief);
    expect(apply.code).toBe(2);
    expect(apply.last).toMatchObject({ type: 'error', error: { code: 'HOSTNAME_OWNED' } });
    expect(String((apply.last?.error as { message?: string } | undefined)?.message)).toContain(
      'is owned by namespace demo, service hello',
    );

    // Nothing written: no new deploy status (so no commit), no container; demo still serves.
    expect(await d.ctlJson<StatusRow[]>('deploy', 'ls')).toEqual(statuses);
    expect(await d.ctlJson<StatusRow[]>('deploy', 'ls', '--namespace', 'thief')).toEqual([]);
    expect(await d.workloads()).toEqual(workloads);
    const served = await d.viaGateway();
    expect(served.status).toBe(200);
    expect(served.body).toContain('(version v1)');

    // The refusal left no conflict for the gateway to settle; status says so.
    expect((await h.ctl('status')).json).toMatchObject({ routes: { conflicts: [], error: null } });
    expect(await h.human('status')).toContain('routes: no conflicts');

    // The daemon's API refuses an oversized manifest itself (a client that skips ployzctl's check).
    const client = new LocalApiClient({ socketPath: h.socket });
    try {
      const big = `${helloManifest({ version: 'v1', host: d.host })}# ${'x'.repeat(MANIFEST_MAX_BYTES)}\n`;
      const err = await client
        .call('deployPreview', { manifest: big, filename: 'big.toml', format: null, actor: null })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect(isPloyzError(err, 'MANIFEST_TOO_LARGE'), String(err)).toBe(true);
      expect(isPloyzError(err) && err.details).toMatchObject({ size: big.length, limit: MANIFEST_MAX_BYTES });
    } finally {
      await client.close();
    }
  });
});
