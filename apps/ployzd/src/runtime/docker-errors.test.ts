import { PloyzError } from '@ployz/types';
import { describe, expect, it } from 'vitest';
import { dockerError, dockerStatus } from './docker-errors.ts';

describe('docker errors, mapped once', () => {
  it('an engine that answered with an error is DOCKER_REFUSED with its words; no answer is DOCKER_UNAVAILABLE', () => {
    const refused = Object.assign(
      new Error('(HTTP code 500) server error - unlinkat …: operation not permitted'),
      {
        statusCode: 500,
      },
    );
    const e = dockerError(refused, 'removing ployz-demo-web-0-x');
    expect(e.code).toBe('DOCKER_REFUSED');
    expect(e.message).toMatch(
      /^removing ployz-demo-web-0-x: the engine answered 500: .*operation not permitted/,
    );
    expect(e.message).not.toMatch(/check that dockerd runs/);
    const down = dockerError(
      Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT' }),
    );
    expect(down.code).toBe('DOCKER_UNAVAILABLE');
    expect(down.message).toMatch(/check that dockerd runs/);
    const own = new PloyzError('IMAGE_MISSING', 'x');
    expect(dockerError(own)).toBe(own);
    expect([dockerStatus(refused), dockerStatus(new Error('x')), dockerStatus(null)]).toEqual([
      500,
      undefined,
      undefined,
    ]);
  });
});
