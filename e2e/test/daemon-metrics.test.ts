/**
 * ployzd's own metrics (issue 22 item 4) on a real ployzd: the data plane's reconcile outcomes
 * at init, then a deploy and a no-op redeploy, scraped from `--metrics-listen`: deploy counters
 * moved, every step the deploy ran has a duration sample, RPC latency for the commands the deploy
 * sent (to this machine, over NATS) on both sides, and the process basics.
 */
import { freePort } from '@ployz/testkit';
import { describe, expect, it } from 'vitest';
import { DaemonHarness } from './daemon-harness.ts';
import { DeployHarness, helloManifest } from './deploy-harness.ts';

async function scrape(port: number): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The value of one sample line (`name{labels} value`), or null when it is absent. */
function sample(text: string, series: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? null : Number(line.slice(series.length + 1));
}

describe('ployzd metrics (real ployzd, dockerd, nats)', () => {
  it('counts reconcile outcomes, deploys, step durations and RPC latency', async () => {
    const port = await freePort();
    const h = await DaemonHarness.create();
    await using _h = h;
    h.extraArgs.push('--metrics-listen', `127.0.0.1:${port}`);
    await h.start();
    const init = await h.ctl('machine', 'init', '--id', 'm1', '--installation', h.installation);
    expect(init.code, init.stderr).toBe(0);
    const d = new DeployHarness(h);
    await d.engineReady();

    const before = await scrape(port);
    expect(before.status).toBe(200);
    expect(before.type).toMatch(/^text\/plain; version=0\.0\.4/);
    // A fresh machine: every component created by the first pass.
    for (const c of ['networking', 'nats', 'gateway', 'dns'])
      expect(
        sample(before.text, `ployzd_dataplane_reconcile_total{component="${c}",outcome="created"}`),
      ).toBeGreaterThanOrEqual(1);
    expect(before.text).toContain('# TYPE ployzd_deploys_total counter');
    expect(sample(before.text, 'ployzd_deploys_total{kind="apply",outcome="committed"}')).toBeNull();

    const v1 = await d.write('v1.toml', helloManifest({ version: 'v1', host: d.host }));
    const first = await d.deploy(v1);
    expect(first.code, JSON.stringify(first.lines.slice(-3))).toBe(0);
    const again = await d.deploy(v1);
    expect(again.last).toMatchObject({ noop: true });
    const ran = first.lines
      .filter((l) => l.type === 'step' && l.state === 'done')
      .map((l) => ({ step: Number(l.step), name: String(l.name) }));
    expect(ran.length).toBeGreaterThanOrEqual(8);

    const after = (await scrape(port)).text;
    expect(sample(after, 'ployzd_deploys_total{kind="apply",outcome="committed"}')).toBe(1);
    expect(sample(after, 'ployzd_deploys_total{kind="apply",outcome="noop"}')).toBe(1);
    expect(sample(after, 'ployzd_deploys_in_flight')).toBe(0);
    // Step 1 ran twice (the no-op ends there); every other step the deploy finished, once.
    for (const { step, name } of ran) {
      const count = sample(after, `ployzd_deploy_step_duration_seconds_count{step="${step}",name="${name}"}`);
      expect(count, `step ${step} ${name}`).toBe(step === 1 ? 2 : 1);
      const inf = sample(
        after,
        `ployzd_deploy_step_duration_seconds_bucket{step="${step}",name="${name}",le="+Inf"}`,
      );
      expect(inf).toBe(count);
    }
    // The deploy asked this machine over NATS: capacity (step 3), then start and readiness.
    for (const command of ['capacity', 'deploy_start', 'deploy_ready']) {
      for (const side of ['client', 'server']) {
        expect(
          sample(after, `ployzd_rpc_calls_total{side="${side}",command="${command}",result="ok"}`),
          `${side} ${command}`,
        ).toBeGreaterThanOrEqual(1);
        expect(
          sample(after, `ployzd_rpc_duration_seconds_count{side="${side}",command="${command}"}`),
        ).toBeGreaterThanOrEqual(1);
      }
    }
    expect(
      sample(after, 'ployzd_rpc_duration_seconds_sum{side="client",command="deploy_ready"}'),
    ).toBeGreaterThan(0);
    expect(after).toContain('# TYPE ployzd_store_errors_total counter');
    expect(sample(after, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(sample(after, 'ployzd_uptime_seconds')).toBeGreaterThan(0);
    expect(sample(after, 'ployzd_event_loop_lag_seconds_count')).toBeGreaterThan(0);
    expect(sample(after, 'ployzd_event_loop_lag_seconds{quantile="0.99"}')).toBeGreaterThanOrEqual(0);

    expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
  }, 120_000);
});
