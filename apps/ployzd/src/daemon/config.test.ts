import { describe, expect, it } from 'vitest';
import { parseDaemonConfig } from './config.ts';

describe('parseDaemonConfig', () => {
  it('uses the documented defaults', () => {
    const c = parseDaemonConfig([], {});
    expect(c.stateDir).toBe('/var/lib/ployz');
    expect(c.socketPath).toBe('/run/ployz/ployzd.sock');
    expect(c.gatewayPort).toBe(80);
    expect(c.componentEnv).toEqual({});
  });

  it('takes env, then flags on top', () => {
    const c = parseDaemonConfig(['--gateway-port', '8088', '--state-dir=/tmp/x'], {
      PLOYZ_GATEWAY_PORT: '81',
      PLOYZ_CONTAINER_PREFIX: 't1-',
      PLOYZ_COMPONENT_ENV: '{"gateway":{"A":"1"}}',
    });
    expect(c.gatewayPort).toBe(8088);
    expect(c.stateDir).toBe('/tmp/x');
    expect(c.containerPrefix).toBe('t1-');
    expect(c.componentEnv.gateway).toEqual({ A: '1' });
  });

  it('names the bad field with a stable code', () => {
    expect(() => parseDaemonConfig(['--gateway-port', '0'], {})).toThrow(/--gateway-port/);
    expect(() => parseDaemonConfig(['--nope', '1'], {})).toThrow(/unknown flag --nope/);
    expect(() => parseDaemonConfig([], { PLOYZ_COMPONENT_ENV: '[' })).toThrow(/component-env/);
  });

  it('serves metrics on loopback by default; host:port or off', () => {
    expect(parseDaemonConfig([], {}).metricsListen).toEqual({ host: '127.0.0.1', port: 9190 });
    expect(parseDaemonConfig(['--metrics-listen', 'off'], {}).metricsListen).toBeNull();
    expect(parseDaemonConfig([], { PLOYZ_METRICS_LISTEN: '[::1]:0' }).metricsListen).toEqual({
      host: '::1',
      port: 0,
    });
    expect(() => parseDaemonConfig(['--metrics-listen', '9190'], {})).toThrow(/--metrics-listen/);
    expect(() => parseDaemonConfig(['--metrics-listen', 'h:70000'], {})).toThrow(/host:port/);
  });
});
