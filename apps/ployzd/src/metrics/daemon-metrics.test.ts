/**
 * ployzd's metrics: a deploy's events become outcome counts and step durations; RPCs (a real
 * RpcServer and RpcClient over a real nats-server) and store errors (a real lost compare-and-set)
 * reach their counters through the diagnostics channels.
 */
import { connect } from '@nats-io/transport-node';
import { type DeployEvent, machineCommands, RpcClient, RpcServer } from '@ployz/protocol';
import { openStore } from '@ployz/store';
import { fixtures, startNats } from '@ployz/testkit';
import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { DaemonMetrics } from './daemon-metrics.ts';

const at = '2026-12-02T00:00:00.000Z';
const step = (n: 1 | 2 | 5, state: 'started' | 'done', phase?: string): DeployEvent => ({
  type: 'step',
  step: n,
  name: n === 1 ? 'preview' : n === 2 ? 'lease' : 'phases',
  state,
  at,
  ...(phase === undefined ? {} : { phase }),
});

describe('DaemonMetrics', () => {
  it('counts deploys by outcome and times each step from its events', async () => {
    let clock = 0;
    const m = new DaemonMetrics('test', () => clock);
    const seen: DeployEvent[] = [];
    const committed = await m.deploy(
      'apply',
      (e) => seen.push(e),
      async (emit) => {
        emit(step(1, 'started'));
        clock += 20;
        emit(step(1, 'done'));
        emit(step(5, 'started', 'p0'));
        clock += 3000;
        emit(step(5, 'done', 'p0'));
        emit(step(5, 'started', 'p1'));
        clock += 1000;
        emit(step(5, 'done', 'p1'));
        emit({ type: 'result', noop: false, status: null, plan: emptyPlan() });
        return 'ok';
      },
    );
    expect(committed).toBe('ok');
    // The client got every event, unchanged.
    expect(seen.map((e) => e.type)).toEqual(['step', 'step', 'step', 'step', 'step', 'step', 'result']);

    const lockHeld = new PloyzError('DEPLOY_LOCK_HELD', 'held');
    await expect(
      m.deploy(
        'apply',
        () => {},
        async () => Promise.reject(lockHeld),
      ),
    ).rejects.toBe(lockHeld);
    await expect(
      m.deploy(
        'rollback',
        () => {},
        async (emit) => {
          emit(step(5, 'started', 'p0'));
          emit({
            type: 'error',
            error: { code: 'DEPLOY_READINESS_FAILED', message: 'never ready' },
            state: 'failed',
          });
          throw new PloyzError('DEPLOY_READINESS_FAILED', 'never ready');
        },
      ),
    ).rejects.toThrow(/never ready/);

    const text = m.render();
    expect(text).toContain('ployzd_deploys_total{kind="apply",outcome="committed"} 1\n');
    expect(text).toContain('ployzd_deploys_total{kind="apply",outcome="refused"} 1\n');
    expect(text).toContain('ployzd_deploys_total{kind="rollback",outcome="failed"} 1\n');
    expect(text).toContain('ployzd_deploy_errors_total{kind="apply",code="DEPLOY_LOCK_HELD"} 1\n');
    expect(text).toContain('ployzd_deploy_errors_total{kind="rollback",code="DEPLOY_READINESS_FAILED"} 1\n');
    expect(text).toContain('ployzd_deploy_step_duration_seconds_count{step="1",name="preview"} 1\n');
    expect(text).toContain('ployzd_deploy_step_duration_seconds_sum{step="1",name="preview"} 0.02\n');
    // Phases: once per phase (3 s and 1 s).
    expect(text).toContain('ployzd_deploy_step_duration_seconds_count{step="5",name="phases"} 2\n');
    expect(text).toContain('ployzd_deploy_step_duration_seconds_sum{step="5",name="phases"} 4\n');
    expect(text).toContain('ployzd_deploy_step_failures_total{step="5",name="phases"} 1\n');
    expect(text).toContain('ployzd_deploy_duration_seconds_sum{kind="apply",outcome="committed"} 4.02\n');
    expect(text).toContain('ployzd_deploys_in_flight 0\n');
  });

  it('measures RPCs on both sides and counts store errors by code (real nats-server)', async () => {
    await using nats = await startNats();
    const m = new DaemonMetrics('test');
    m.start();
    const nc = await connect({ servers: nats.url });
    const scope = { installation: 'metrics', authority: 'auth-metrics' };
    const server = new RpcServer({ nc, scope, machine: 'm1', commands: machineCommands }).handleAll({
      ping: () => ({ pong: true as const, machine: 'm1', at }),
    });
    server.start();
    const store = await openStore({ servers: nats.url, ...scope });
    try {
      const client = new RpcClient({ nc, scope, commands: machineCommands });
      await client.call('m1', 'ping', null);
      await expect(client.call('m2', 'ping', null, { timeoutMs: 500 })).rejects.toThrow();
      await store.machines.create(fixtures.machine('m1'));
      await expect(store.machines.create(fixtures.machine('m1'))).rejects.toMatchObject({
        code: 'STORE_CONFLICT',
      });
      const text = m.render();
      expect(text).toContain('ployzd_rpc_calls_total{side="client",command="ping",result="ok"} 1\n');
      expect(text).toContain('ployzd_rpc_calls_total{side="server",command="ping",result="ok"} 1\n');
      expect(text).toMatch(
        /ployzd_rpc_calls_total\{side="client",command="ping",result="RPC_NO_RESPONDERS"\} 1\n/,
      );
      expect(text).toContain('ployzd_rpc_duration_seconds_count{side="client",command="ping"} 2\n');
      expect(text).toContain('ployzd_rpc_duration_seconds_count{side="server",command="ping"} 1\n');
      expect(text).toContain('ployzd_store_errors_total{code="STORE_CONFLICT"} 1\n');
      // Stopped: nothing more is counted.
      m.stop();
      await client.call('m1', 'ping', null);
      expect(m.render()).toContain('ployzd_rpc_calls_total{side="client",command="ping",result="ok"} 1\n');
    } finally {
      m.stop();
      await store.close();
      await server.stop();
      await nc.close();
    }
  });
});

function emptyPlan() {
  return {
    namespace: 'demo',
    manifest_hash: 'h',
    changed: true,
    services: [],
    phases: [],
    volumes: [],
    images: [],
    rollback_of: null,
    lineage: null,
    summary: { create: 0, replace: 0, update: 0, remove: 0, unchanged: 0, starts: 0, stops: 0 },
  };
}
