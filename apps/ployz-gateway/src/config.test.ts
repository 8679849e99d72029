import { availableParallelism } from 'node:os';
import { ADMIN_PATHS, GatewayEnv } from '@ployz/protocol';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { helpText, parseGatewayArgs, workerCount } from './config.ts';

function run(argv: string[], env: Record<string, string>) {
  const parsed = parseGatewayArgs(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a config, got ${parsed.kind}`);
  return parsed.config;
}

describe('parseGatewayArgs', () => {
  it('defaults, env, then flags (flags win)', () => {
    const parsed = parseGatewayArgs(['--http-port', '8080', '--cert-dir', '/certs'], {
      PLOYZ_GATEWAY_HTTP_PORT: '9090',
      PLOYZ_NATS_URL: 'nats://10.0.0.1:4222',
      PLOYZ_GATEWAY_ADMIN_PORT: '7000',
    });
    expect(parsed.kind).toBe('run');
    if (parsed.kind !== 'run') return;
    expect(parsed.config).toMatchObject({
      httpPort: 8080,
      adminPort: 7000,
      natsUrl: 'nats://10.0.0.1:4222',
      certDir: '/certs',
      installation: 'local',
      authority: 'auth-default',
      httpsPort: 443,
      maxHeaderBytes: 16384,
    });
  });

  it('recognises --help and --version', () => {
    expect(parseGatewayArgs(['--help'], {}).kind).toBe('help');
    expect(parseGatewayArgs(['--version'], {}).kind).toBe('version');
  });

  it('names the flag and env variable of every bad setting', () => {
    try {
      parseGatewayArgs(['--http-port', '99999'], { PLOYZ_GATEWAY_LOG_LEVEL: 'loud' });
      expect.unreachable();
    } catch (error) {
      expect(isPloyzError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain('--http-port / PLOYZ_GATEWAY_HTTP_PORT');
      expect((error as Error).message).toContain('--log-level / PLOYZ_GATEWAY_LOG_LEVEL');
    }
    expect(() => parseGatewayArgs(['--nope'], {})).toThrow(/Unknown option '--nope'.*--help/);
  });
});

describe('the env contract (@ployz/protocol GatewayEnv)', () => {
  it('parses the env ployzd gives it (apps/ployzd dataplane/component-spec.ts)', () => {
    const config = run([], {
      PLOYZ_INSTALLATION: 'local',
      PLOYZ_AUTHORITY: 'auth-default',
      PLOYZ_MACHINE_ID: 'm1',
      PLOYZ_NATS_URL: 'nats://127.0.0.1:4222',
      PLOYZ_NATS_NKEY_SEED_FILE: '/run/ployz/nats/seed',
      PLOYZ_GATEWAY_HTTP_PORT: '8080',
      PLOYZ_GATEWAY_HTTPS_PORT: '8443',
      PLOYZ_GATEWAY_ADMIN_HOST: '10.210.7.2',
      PLOYZ_GATEWAY_ADMIN_PORT: '9180',
    });
    expect(config).toMatchObject({
      httpPort: 8080,
      httpsPort: 8443,
      adminHost: '10.210.7.2',
      adminPort: 9180,
      natsUrl: 'nats://127.0.0.1:4222',
      natsNkeySeedFile: '/run/ployz/nats/seed',
      machineId: 'm1',
    });
  });

  it('reads every setting from the env name the contract gives it', () => {
    const env: Record<string, string> = {
      PLOYZ_NATS_URL: 'nats://10.0.0.9:4222',
      PLOYZ_NATS_NKEY_SEED: 'SUAEXAMPLE',
      PLOYZ_NATS_NKEY_SEED_FILE: '/seed',
      PLOYZ_INSTALLATION: 'inst',
      PLOYZ_AUTHORITY: 'auth',
      PLOYZ_MACHINE_ID: 'm9',
      PLOYZ_GATEWAY_SNAPSHOT_FILE: '/snap.json',
      PLOYZ_GATEWAY_LISTEN_HOST: '0.0.0.0',
      PLOYZ_GATEWAY_HTTP_PORT: '1080',
      PLOYZ_GATEWAY_HTTPS_PORT: '1443',
      PLOYZ_GATEWAY_CERT_DIR: '/certs',
      PLOYZ_GATEWAY_ACME_DIR: '/acme',
      PLOYZ_GATEWAY_ADMIN_HOST: '::1',
      PLOYZ_GATEWAY_ADMIN_PORT: '1180',
      PLOYZ_GATEWAY_MAX_HEADER_BYTES: '2048',
      PLOYZ_GATEWAY_HEADERS_TIMEOUT_MS: '11',
      PLOYZ_GATEWAY_REQUEST_TIMEOUT_MS: '12',
      PLOYZ_GATEWAY_BODY_IDLE_TIMEOUT_MS: '13',
      PLOYZ_GATEWAY_UPSTREAM_TIMEOUT_MS: '14',
      PLOYZ_GATEWAY_CONNECT_TIMEOUT_MS: '15',
      PLOYZ_GATEWAY_MACHINE_PROBE_INTERVAL_MS: '0',
      PLOYZ_GATEWAY_MACHINE_PROBE_TIMEOUT_MS: '19',
      PLOYZ_GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '16',
      PLOYZ_GATEWAY_DRAIN_TIMEOUT_MS: '17',
      PLOYZ_GATEWAY_MAX_LAG_MS: '18',
      PLOYZ_GATEWAY_LOG_LEVEL: 'debug',
      PLOYZ_GATEWAY_WORKERS: '3',
      PLOYZ_GATEWAY_START_WAIT_MS: '900',
      PLOYZ_GATEWAY_ADMIN_ALT_PORT: '1181',
    };
    expect(Object.keys(env).sort()).toEqual([...GatewayEnv.envNames].sort());
    expect(run([], env)).toEqual({
      natsUrl: 'nats://10.0.0.9:4222',
      natsNkeySeed: 'SUAEXAMPLE',
      natsNkeySeedFile: '/seed',
      installation: 'inst',
      authority: 'auth',
      machineId: 'm9',
      snapshotFile: '/snap.json',
      listenHost: '0.0.0.0',
      httpPort: 1080,
      httpsPort: 1443,
      certDir: '/certs',
      acmeDir: '/acme',
      adminHost: '::1',
      adminPort: 1180,
      maxHeaderBytes: 2048,
      headersTimeoutMs: 11,
      requestTimeoutMs: 12,
      bodyIdleTimeoutMs: 13,
      upstreamTimeoutMs: 14,
      connectTimeoutMs: 15,
      machineProbeIntervalMs: 0,
      machineProbeTimeoutMs: 19,
      keepAliveTimeoutMs: 16,
      drainTimeoutMs: 17,
      maxLagMs: 18,
      logLevel: 'debug',
      workers: 3,
      startWaitMs: 900,
      adminAltPort: 1181,
    });
  });

  it('--workers: 0 (the default) is one worker per core; a count is taken as is', () => {
    expect(run([], {}).workers).toBe(0);
    expect(workerCount(run([], {}))).toBe(availableParallelism());
    expect(workerCount(run(['--workers', '2'], {}))).toBe(2);
    expect(() => parseGatewayArgs(['--workers', '65'], {})).toThrow(/--workers \/ PLOYZ_GATEWAY_WORKERS/);
  });

  it('--help names every env variable, the flags and the admin paths', () => {
    const help = helpText('0.0.0');
    for (const name of GatewayEnv.envNames) expect(help).toContain(name);
    for (const flag of [
      '--nats-url',
      '--nats-nkey-seed-file',
      '--http-port',
      '--admin-host',
      '--log-level',
    ]) {
      expect(help).toContain(flag);
    }
    for (const path of Object.values(ADMIN_PATHS)) expect(help).toContain(path);
    // An env-only setting is not a flag.
    expect(() => parseGatewayArgs(['--machine-id', 'm1'], {})).toThrow(/Unknown option/);
  });
});
