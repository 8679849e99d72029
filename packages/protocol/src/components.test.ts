import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import {
  DnsEnv,
  defineEnvContract,
  formatHostPort,
  GATEWAY_ADMIN_PORT,
  GatewayEnv,
  NATS_URL_IN_NETNS,
  parseHostPort,
} from './components.ts';

describe('host:port addresses', () => {
  it('reads every form and writes back one that reads the same', () => {
    const cases: [string, { host: string; port: number }][] = [
      ['10.0.0.2', { host: '10.0.0.2', port: 53 }],
      ['10.0.0.2:5353', { host: '10.0.0.2', port: 5353 }],
      ['::1', { host: '::1', port: 53 }],
      ['fd70:6c6f:797a:1:2:3:4:5', { host: 'fd70:6c6f:797a:1:2:3:4:5', port: 53 }],
      ['[fd00::1]:5353', { host: 'fd00::1', port: 5353 }],
      ['[::]', { host: '::', port: 53 }],
      [' 127.0.0.1:0 ', { host: '127.0.0.1', port: 0 }],
    ];
    for (const [text, expected] of cases) {
      const parsed = parseHostPort(text, 53);
      expect(parsed, text).toEqual(expected);
      expect(parseHostPort(formatHostPort(parsed), 1)).toEqual(expected);
    }
    expect(formatHostPort({ host: 'fd00::1', port: 53 })).toBe('[fd00::1]:53');
    expect(formatHostPort({ host: '10.0.0.2', port: 53 })).toBe('10.0.0.2:53');
  });

  it('refuses host names, bad ports and garbage', () => {
    for (const text of [
      'dns.example:53',
      'localhost',
      '10.0.0.2:99999',
      '10.0.0.2:',
      '10.0.0.2:5x',
      '[::1]:x',
      '',
    ]) {
      expect(() => parseHostPort(text, 53), text).toThrow();
    }
  });
});

describe('an env contract', () => {
  const contract = defineEnvContract('demo', {
    port: { env: 'DEMO_PORT', schema: GatewayEnv.settings.httpPort.schema },
    name: { env: 'DEMO_NAME', schema: GatewayEnv.settings.certDir.schema },
    listen: { env: 'DEMO_LISTEN', schema: DnsEnv.settings.listen.schema },
  });

  it('parses defaults, then env, then overrides (flags win); an empty string is unset', () => {
    expect(contract.parse({})).toEqual({
      success: true,
      config: { port: 80, name: undefined, listen: [{ host: '127.0.0.1', port: 53 }] },
    });
    const parsed = contract.parse(
      { DEMO_PORT: '8080', DEMO_NAME: '', DEMO_LISTEN: '10.0.0.2,[fd00::1]:5353' },
      { port: '9090', name: '' },
    );
    expect(parsed).toEqual({
      success: true,
      config: {
        port: 9090,
        name: undefined,
        listen: [
          { host: '10.0.0.2', port: 53 },
          { host: 'fd00::1', port: 5353 },
        ],
      },
    });
  });

  it('names the env variable of every bad setting', () => {
    const parsed = contract.parse({ DEMO_PORT: 'eighty', DEMO_LISTEN: 'dns.example' });
    expect(parsed.success).toBe(false);
    if (parsed.success) return;
    expect(parsed.issues.map((i) => [i.key, i.env])).toEqual([
      ['port', 'DEMO_PORT'],
      ['listen', 'DEMO_LISTEN'],
    ]);
    expect(parsed.issues[1]?.message).toContain('not an IP address');
  });

  it('builds only the values given, in the form it parses back', () => {
    const values = {
      port: 8443,
      listen: [
        { host: '10.0.0.2', port: 53 },
        { host: 'fd00::1', port: 53 },
      ],
    };
    const env = contract.build(values);
    expect(env).toEqual({ DEMO_PORT: '8443', DEMO_LISTEN: '10.0.0.2:53,[fd00::1]:53' });
    expect(contract.parse(env)).toEqual({ success: true, config: { ...values, name: undefined } });
  });

  it('refuses to build an env the app would refuse', () => {
    try {
      contract.build({ port: 70_000 });
      expect.unreachable();
    } catch (error) {
      expect(isPloyzError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain('demo would refuse this env: DEMO_PORT');
    }
  });
});

describe('the edge apps’ contracts', () => {
  // The names operators, images and tests set today: renaming one is a breaking change.
  const EDGE = [
    'PLOYZ_NATS_URL',
    'PLOYZ_NATS_NKEY_SEED',
    'PLOYZ_NATS_NKEY_SEED_FILE',
    'PLOYZ_INSTALLATION',
    'PLOYZ_AUTHORITY',
    'PLOYZ_MACHINE_ID',
  ];

  it('keeps every env name the gateway reads', () => {
    expect([...GatewayEnv.envNames].sort()).toEqual(
      [
        ...EDGE,
        'PLOYZ_GATEWAY_SNAPSHOT_FILE',
        'PLOYZ_GATEWAY_LISTEN_HOST',
        'PLOYZ_GATEWAY_HTTP_PORT',
        'PLOYZ_GATEWAY_HTTPS_PORT',
        'PLOYZ_GATEWAY_CERT_DIR',
        'PLOYZ_GATEWAY_ACME_DIR',
        'PLOYZ_GATEWAY_ADMIN_HOST',
        'PLOYZ_GATEWAY_ADMIN_PORT',
        'PLOYZ_GATEWAY_MAX_HEADER_BYTES',
        'PLOYZ_GATEWAY_HEADERS_TIMEOUT_MS',
        'PLOYZ_GATEWAY_REQUEST_TIMEOUT_MS',
        'PLOYZ_GATEWAY_BODY_IDLE_TIMEOUT_MS',
        'PLOYZ_GATEWAY_UPSTREAM_TIMEOUT_MS',
        'PLOYZ_GATEWAY_CONNECT_TIMEOUT_MS',
        'PLOYZ_GATEWAY_MACHINE_PROBE_INTERVAL_MS',
        'PLOYZ_GATEWAY_MACHINE_PROBE_TIMEOUT_MS',
        'PLOYZ_GATEWAY_KEEP_ALIVE_TIMEOUT_MS',
        'PLOYZ_GATEWAY_DRAIN_TIMEOUT_MS',
        'PLOYZ_GATEWAY_MAX_LAG_MS',
        'PLOYZ_GATEWAY_LOG_LEVEL',
        'PLOYZ_GATEWAY_WORKERS',
        'PLOYZ_GATEWAY_START_WAIT_MS',
        'PLOYZ_GATEWAY_ADMIN_ALT_PORT',
      ].sort(),
    );
  });

  it('keeps every env name ployz-dns reads', () => {
    expect([...DnsEnv.envNames].sort()).toEqual(
      [
        ...EDGE,
        'PLOYZ_DNS_LISTEN',
        'PLOYZ_DNS_ADMIN',
        'PLOYZ_DNS_UPSTREAMS',
        'PLOYZ_DNS_RESOLV_CONF',
        'PLOYZ_DNS_UPSTREAM_TIMEOUT_MS',
        'PLOYZ_DNS_SNAPSHOT_FILE',
        'PLOYZ_LOG_LEVEL',
        'PLOYZ_DNS_WORKERS',
        'PLOYZ_DNS_CACHE_MAX_ENTRIES',
        'PLOYZ_DNS_CACHE_MAX_TTL',
        'PLOYZ_DNS_TCP_MESSAGE_TIMEOUT_MS',
        'PLOYZ_DNS_TCP_MAX_PER_SOURCE',
        'PLOYZ_DNS_START_WAIT_MS',
        'PLOYZ_DNS_ADMIN_ALT_PORT',
      ].sort(),
    );
  });

  it('defaults an app run by hand to a local NATS and loopback admin', () => {
    const gateway = GatewayEnv.parse({});
    expect(gateway.success && gateway.config).toMatchObject({
      natsUrl: NATS_URL_IN_NETNS,
      installation: 'local',
      authority: 'auth-default',
      httpPort: 80,
      httpsPort: 443,
      adminHost: '127.0.0.1',
      adminPort: GATEWAY_ADMIN_PORT,
    });
    const dns = DnsEnv.parse({});
    expect(dns.success && dns.config).toMatchObject({
      natsUrl: 'nats://127.0.0.1:4222',
      listen: [{ host: '127.0.0.1', port: 53 }],
      admin: { host: '127.0.0.1', port: 9053 },
      upstreams: [],
    });
  });

  it('refuses an installation that cannot name a stream', () => {
    const parsed = GatewayEnv.parse({ PLOYZ_INSTALLATION: 'a.b' });
    expect(parsed.success).toBe(false);
  });
});
