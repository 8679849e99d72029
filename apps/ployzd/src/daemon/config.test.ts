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

  it("publishes HTTPS on 443 and orders from Let's Encrypt by default; both can be turned off", () => {
    const c = parseDaemonConfig([], {});
    expect(c.gatewayHttpsPort).toBe(443);
    expect(c.acmeDirectory).toBe('https://acme-v02.api.letsencrypt.org/directory');
    expect(c.acmeCaFile).toBeUndefined();
    expect(c.acmeEmail).toBeUndefined();
    expect(c.acmeIntervalMs).toBe(30_000);
    expect(c.acmeRequestRetries).toBe(5);
    const off = parseDaemonConfig(['--gateway-https-port', 'off', '--acme-directory', 'off'], {});
    expect(off.gatewayHttpsPort).toBeNull();
    expect(off.acmeDirectory).toBeNull();
    const test = parseDaemonConfig(
      ['--acme-directory', 'https://127.0.0.1:14000/dir', '--acme-ca-file', '/tmp/pebble.pem'],
      { PLOYZ_ACME_EMAIL: 'ops@example.com', PLOYZ_GATEWAY_HTTPS_PORT: '8443' },
    );
    expect(test).toMatchObject({
      acmeDirectory: 'https://127.0.0.1:14000/dir',
      acmeCaFile: '/tmp/pebble.pem',
      acmeEmail: 'ops@example.com',
      gatewayHttpsPort: 8443,
    });
    expect(() => parseDaemonConfig(['--gateway-https-port', '0'], {})).toThrow(/--gateway-https-port/);
    expect(() => parseDaemonConfig(['--acme-directory', 'letsencrypt'], {})).toThrow(/--acme-directory/);
    expect(() => parseDaemonConfig(['--acme-email', 'nobody'], {})).toThrow(/--acme-email/);
  });
});
