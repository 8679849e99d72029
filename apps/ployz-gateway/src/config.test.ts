import { isPloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { parseGatewayArgs } from './config.ts';

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
