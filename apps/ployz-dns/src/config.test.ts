import { ADMIN_PATHS, DnsEnv } from '@ployz/protocol';
import { DNS_ZONE } from '@ployz/routing';
import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { HELP, parseCli } from './config.ts';
import { DEFAULT_TCP_MAX_PER_SOURCE, DEFAULT_TCP_MESSAGE_MS } from './server.ts';

function run(argv: string[], env: Record<string, string>) {
  const parsed = parseCli(argv, env);
  if (parsed.kind !== 'run') throw new Error(`expected a config, got ${parsed.kind}`);
  return parsed.config;
}

describe('parseCli', () => {
  it('parses the env ployzd gives it (apps/ployzd dataplane/component-spec.ts)', () => {
    const config = run([], {
      PLOYZ_INSTALLATION: 'local',
      PLOYZ_AUTHORITY: 'auth-default',
      PLOYZ_MACHINE_ID: 'm1',
      PLOYZ_NATS_URL: 'nats://127.0.0.1:4222',
      PLOYZ_NATS_NKEY_SEED_FILE: '/run/ployz/nats/seed',
      PLOYZ_DNS_LISTEN: '10.210.7.2:53,127.0.0.1:53,[fd70:6c6f:797a:1:2:3:4:5]:53',
      PLOYZ_DNS_ADMIN: '10.210.7.2:9053',
    });
    expect(config).toMatchObject({
      listen: [
        { host: '10.210.7.2', port: 53 },
        { host: '127.0.0.1', port: 53 },
        { host: 'fd70:6c6f:797a:1:2:3:4:5', port: 53 },
      ],
      admin: { host: '10.210.7.2', port: 9053 },
      natsUrl: 'nats://127.0.0.1:4222',
      natsNkeySeedFile: '/run/ployz/nats/seed',
      installation: 'local',
      authority: 'auth-default',
      machineId: 'm1',
    });
    expect(config.natsNkeySeed).toBeUndefined();
    expect(config.snapshotFile).toBeUndefined();
  });

  it('defaults, env, then flags (flags win; repeated flags replace the env list)', () => {
    expect(run([], {})).toMatchObject({
      listen: [{ host: '127.0.0.1', port: 53 }],
      admin: { host: '127.0.0.1', port: 9053 },
      natsUrl: 'nats://127.0.0.1:4222',
      upstreams: [],
      resolvConf: '/etc/resolv.conf',
      upstreamTimeoutMs: 2000,
      workers: 1,
      logLevel: 'info',
      tcpMessageTimeoutMs: DEFAULT_TCP_MESSAGE_MS,
      tcpMaxPerSource: DEFAULT_TCP_MAX_PER_SOURCE,
    });
    const config = run(['--listen', '10.0.0.2', '--listen', '[::1]:5353', '--workers', '3'], {
      PLOYZ_DNS_LISTEN: '10.9.9.9:53',
      PLOYZ_DNS_UPSTREAMS: '1.1.1.1,[2606:4700::1111]',
      PLOYZ_DNS_WORKERS: '2',
      PLOYZ_DNS_CACHE_MAX_TTL: '60',
    });
    expect(config).toMatchObject({
      listen: [
        { host: '10.0.0.2', port: 53 },
        { host: '::1', port: 5353 },
      ],
      upstreams: [
        { host: '1.1.1.1', port: 53 },
        { host: '2606:4700::1111', port: 53 },
      ],
      workers: 3,
      cacheMaxTtl: 60,
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
      PLOYZ_DNS_LISTEN: '10.0.0.2:5300',
      PLOYZ_DNS_ADMIN: '[::1]:9000',
      PLOYZ_DNS_UPSTREAMS: '9.9.9.9:5353',
      PLOYZ_DNS_RESOLV_CONF: '/resolv',
      PLOYZ_DNS_UPSTREAM_TIMEOUT_MS: '300',
      PLOYZ_DNS_SNAPSHOT_FILE: '/snap.json',
      PLOYZ_LOG_LEVEL: 'debug',
      PLOYZ_DNS_WORKERS: '4',
      PLOYZ_DNS_CACHE_MAX_ENTRIES: '5',
      PLOYZ_DNS_CACHE_MAX_TTL: '6',
      PLOYZ_DNS_TCP_MESSAGE_TIMEOUT_MS: '700',
      PLOYZ_DNS_TCP_MAX_PER_SOURCE: '8',
      PLOYZ_DNS_START_WAIT_MS: '900',
      PLOYZ_DNS_ADMIN_ALT_PORT: '9001',
    };
    expect(Object.keys(env).sort()).toEqual([...DnsEnv.envNames].sort());
    expect(run([], env)).toEqual({
      natsUrl: 'nats://10.0.0.9:4222',
      natsNkeySeed: 'SUAEXAMPLE',
      natsNkeySeedFile: '/seed',
      installation: 'inst',
      authority: 'auth',
      machineId: 'm9',
      listen: [{ host: '10.0.0.2', port: 5300 }],
      admin: { host: '::1', port: 9000 },
      upstreams: [{ host: '9.9.9.9', port: 5353 }],
      resolvConf: '/resolv',
      upstreamTimeoutMs: 300,
      snapshotFile: '/snap.json',
      logLevel: 'debug',
      workers: 4,
      cacheMaxEntries: 5,
      cacheMaxTtl: 6,
      tcpMessageTimeoutMs: 700,
      tcpMaxPerSource: 8,
      startWaitMs: 900,
      adminAltPort: 9001,
    });
  });

  it('names the flag and env variable of every bad setting', () => {
    try {
      parseCli(['--listen', 'dns.example:53'], { PLOYZ_DNS_WORKERS: '0', PLOYZ_NATS_NKEY_SEED_FILE: '' });
      expect.unreachable();
    } catch (error) {
      expect(isPloyzError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain(
        '--listen / PLOYZ_DNS_LISTEN: "dns.example:53" is not an IP',
      );
      expect((error as Error).message).toContain('--workers / PLOYZ_DNS_WORKERS');
    }
    // The seed is env only: never a flag, so it does not show up in `ps`.
    expect(() => parseCli(['--nats-nkey-seed', 'SU…'], {})).toThrow(/Unknown option.*--help/);
  });

  it('--help names every env variable, the zone and the admin paths', () => {
    for (const name of DnsEnv.envNames) expect(HELP).toContain(name);
    expect(HELP).toContain(DNS_ZONE);
    expect(HELP).toContain(Object.values(ADMIN_PATHS).join(' '));
    expect(parseCli(['--help'], {}).kind).toBe('help');
    expect(parseCli(['-h'], {}).kind).toBe('help');
    expect(parseCli(['--version'], {}).kind).toBe('version');
  });
});
