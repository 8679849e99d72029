/**
 * A later phase fails after a checkpoint commit, on the real system (issue 15 item 11): phase
 * `first` (service `front`, `commit_policy = "checkpoint"`) commits v2, phase `second` (service
 * `back`) never becomes ready. The deploy is `FailedAfterCheckpoint`; the checkpointed facts are
 * live (the gateway serves front v2) and the failed phase changed nothing (back still v1, its
 * candidate discarded). Rolling back to the first deploy restores v1 everywhere and removes the
 * old front instance the failed deploy left behind.
 */
import { describe, expect, it } from 'vitest';
import { DeployHarness } from './deploy-harness.ts';
import {
  type DeployDetail,
  deployIdOf,
  HostView,
  inspectField,
  instancesWith,
  type StatusRow,
  sample,
} from './deploy-scenarios.ts';

const t0 = Date.now();
const mark = (what: string) =>
  process.stderr.write(`[deploy-checkpoint-failure +${((Date.now() - t0) / 1000).toFixed(1)}s] ${what}\n`);

const READY = 'http = { path = "/healthz" }\ninterval = "100ms"\nretries = 50';
const NEVER_READY = 'http = { path = "/nope" }\ninterval = "100ms"\nretries = 3\nstart_timeout = "2s"';

function twoPhases(o: {
  front: string;
  back: string;
  backReadiness: string;
  hosts: [string, string];
}): string {
  const service = (name: string, version: string, host: string, readiness: string) => `
[[services]]
name = "${name}"
image = "ployz/hello:latest"
ports = { http = 8080 }
env = { PORT = "8080", HELLO_VERSION = "${version}" }
stop_grace = "1s"

[[services.routes]]
http = { hostnames = ["${host}"], path = "/" }

[services.readiness]
${readiness}
`;
  return `namespace = "demo"
${service('front', o.front, o.hosts[0], READY)}${service('back', o.back, o.hosts[1], o.backReadiness)}
[[phases]]
id = "first"
services = ["front"]
commit_policy = "checkpoint"

[[phases]]
id = "second"
services = ["back"]
after = ["first"]
`;
}

describe('a later phase fails after a checkpoint (real ployzd, dockerd, nats, gateway)', () => {
  it('FailedAfterCheckpoint: the checkpointed phase serves the new version, the failed one the old; rollback works', async () => {
    const { h } = await DeployHarness.up();
    await using _h = h;
    const hosts: [string, string] = [`front-${h.id}.localhost`, `back-${h.id}.localhost`];
    const front = new HostView(h, hosts[0]);
    const back = new HostView(h, hosts[1]);
    const containersOf = async (service: string) =>
      Object.entries(await front.workloads())
        .filter(([name]) => name.startsWith(`${h.prefix}demo-${service}-`))
        .map(([, id]) => id)
        .sort();

    mark('---- v1 (both phases)');
    const v1 = await front.write(
      'v1.toml',
      twoPhases({ front: 'v1', back: 'v1', backReadiness: READY, hosts }),
    );
    const first = await front.deploy(v1);
    expect(first.code, JSON.stringify(first.last)).toBe(0);
    const firstId = deployIdOf(first.lines);
    await front.waitServing('v1');
    await back.waitServing('v1');
    const frontV1 = await containersOf('front');
    const backV1 = await containersOf('back');
    expect([frontV1.length, backV1.length]).toEqual([1, 1]);

    mark('---- v2: phase first commits, phase second never ready');
    const v2 = await front.write(
      'v2.toml',
      twoPhases({ front: 'v2', back: 'v2', backReadiness: NEVER_READY, hosts }),
    );
    const failed = await front.deploy(v2);
    const failedId = deployIdOf(failed.lines);
    expect(failed.code, JSON.stringify(failed.last)).not.toBe(0);
    expect(failed.last).toMatchObject({ type: 'error', error: { code: 'DEPLOY_READINESS_FAILED' } });
    expect(failed.lines).toContainEqual(
      expect.objectContaining({ type: 'error', state: 'FailedAfterCheckpoint' }),
    );
    expect(failed.lines.filter((l) => l.type === 'commit')).toMatchObject([
      { kind: 'checkpoint', phase: 'first' },
    ]);
    // The back candidate was started, never ready, and discarded.
    const backCandidates = instancesWith(failed.lines, 'starting', 'back');
    expect(backCandidates).toHaveLength(1);
    expect(instancesWith(failed.lines, 'discarded', 'back')).toEqual(backCandidates);

    const shown = await front.ctlJson<DeployDetail>('deploy', 'show', failedId);
    expect(shown.status).toMatchObject({
      state: 'FailedAfterCheckpoint',
      error: { code: 'DEPLOY_READINESS_FAILED' },
    });
    expect(shown.commits).toMatchObject([{ kind: 'checkpoint', phase: 'first' }]);
    expect(shown.commits[0]?.services.map((s) => s.service)).toEqual(['front']);
    const phase = (id: string) => shown.phases.find((p) => p.phase === id);
    expect(phase('first')).toMatchObject({ state: 'committed', commit_id: shown.commits[0]?.id });
    expect(phase('second')).toMatchObject({ state: 'failed', error: { code: 'DEPLOY_READINESS_FAILED' } });
    // Nothing else committed (the implicit, empty `default` phase never ran).
    expect(shown.phases.filter((p) => p.state === 'committed').map((p) => p.phase)).toEqual(['first']);
    expect((await front.ctlJson<StatusRow[]>('deploy', 'ls'))[0]).toMatchObject({
      deploy_id: failedId,
      state: 'FailedAfterCheckpoint',
    });

    // Checkpointed facts are live: front serves v2 only; back still v1 only, same container.
    await front.waitServing('v2');
    expect(new Set(await sample(front, 15))).toEqual(new Set(['v2']));
    expect(new Set(await sample(back, 15))).toEqual(new Set(['v1']));
    expect(await containersOf('back')).toEqual(backV1);
    // Step 9 never ran: the old front instance is left (unrouted) for the next deploy.
    expect(await containersOf('front')).toEqual(expect.arrayContaining(frontV1));
    expect(await containersOf('front')).toHaveLength(2);

    mark('---- rollback to the first deploy');
    const rb = await front.rollback(firstId);
    expect(rb.code, JSON.stringify(rb.last)).toBe(0);
    expect(rb.last).toMatchObject({ type: 'done', status: { state: 'committed', rollback_of: firstId } });
    await front.waitServing('v1');
    expect(new Set(await sample(front, 10))).toEqual(new Set(['v1']));
    expect(new Set(await sample(back, 10))).toEqual(new Set(['v1']));
    // The leftover v1 front and the checkpointed v2 front are both gone: one front, one back.
    const frontAfter = await containersOf('front');
    expect(frontAfter).toHaveLength(1);
    expect(await inspectField(frontV1[0] ?? '', '{{.Id}}')).toBeNull();
    expect(await containersOf('back')).toEqual(backV1);
    const history = await front.ctlJson<StatusRow[]>('deploy', 'ls');
    expect(history.map((s) => s.state)).toEqual(['committed', 'FailedAfterCheckpoint', 'committed']);
    mark('done');
  });
});
