import { describe, expect, it } from 'vitest';
import { DeployHarness } from './deploy-harness.ts';

/**
 * Readiness with a start deadline (issue 16): on this 2-core machine forty cold Node processes
 * need far longer than `interval × retries` to listen; an instance that has never answered is
 * starting, not failing.
 */

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[scale.test +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

function service(name: string, replicas: number, env: Record<string, string>, readiness = ''): string {
  const envText = Object.entries({ PORT: '8080', ...env })
    .map(([k, v]) => `${k} = "${v}"`)
    .join(', ');
  return `[[services]]
name = "${name}"
image = "ployz/hello:latest"
ports = { http = 8080 }
env = { ${envText} }
stop_grace = "1s"
placement = { replicas = ${replicas} }

[services.readiness]
http = { path = "/healthz" }
${readiness}
`;
}

describe('deploys at scale and slow starters (real ployzd, dockerd, nats)', () => {
  it('20 services x 2 commit with default readiness; a 20 s starter commits; a silent one fails at start_timeout', async () => {
    const { h, d } = await DeployHarness.up();
    await using _h = h;

    mark('---- 20 services x 2 replicas, default readiness');
    const many = ['namespace = "many"', '']
      .concat(Array.from({ length: 20 }, (_, i) => service(`s${i}`, 2, { HELLO_VERSION: `s${i}` })))
      .join('\n');
    const big = await d.deploy(await d.write('many.toml', many));
    expect(big.code, JSON.stringify(big.lines.slice(-3))).toBe(0);
    expect(big.last).toMatchObject({ type: 'done', noop: false, status: { state: 'committed' } });
    const ready = big.lines.filter((l) => l.type === 'instance' && l.action === 'ready');
    expect(ready).toHaveLength(40);
    for (const l of ready) expect(typeof l.waited_ms).toBe('number');
    expect(ready.map((l) => l.progress).at(-1)).toBe('40/40');
    mark(`40 ready; slowest waited ${Math.max(...ready.map((l) => Number(l.waited_ms)))} ms`);

    mark('---- a service that listens after 20 s, default readiness');
    const slow = await d.deploy(
      await d.write(
        'slow.toml',
        `namespace = "slow"\n\n${service('late', 1, { HELLO_LISTEN_DELAY_MS: '20000' })}`,
      ),
    );
    expect(slow.code, JSON.stringify(slow.lines.slice(-3))).toBe(0);
    expect(slow.last).toMatchObject({ status: { state: 'committed' } });
    const lateReady = slow.lines.find((l) => l.type === 'instance' && l.action === 'ready');
    expect(Number(lateReady?.waited_ms)).toBeGreaterThanOrEqual(19_000);

    mark('---- a service that never listens fails at its start_timeout, nothing committed');
    const silent = await d.deploy(
      await d.write(
        'silent.toml',
        `namespace = "silent"\n\n${service('mute', 1, { HELLO_LISTEN_DELAY_MS: '3600000' }, 'start_timeout = "4s"')}`,
      ),
    );
    expect(silent.code).not.toBe(0);
    const error = silent.lines.find((l) => l.type === 'error') as
      | { error: { code: string; message: string } }
      | undefined;
    expect(error?.error.code).toBe('DEPLOY_READINESS_FAILED');
    expect(error?.error.message).toContain('never answered its http check within the 4 s start timeout');
    const history = await d.ctlJson<Array<{ namespace: string; state: string }>>('deploy', 'ls');
    const silentRows = history.filter((r) => r.namespace === 'silent');
    expect(silentRows.every((r) => r.state !== 'committed')).toBe(true);
  });
});
