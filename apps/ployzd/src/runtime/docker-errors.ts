/**
 * The one map from a Docker engine error to what Ployz says (every caller in ployzd uses it):
 * the HTTP status dockerode reports; DOCKER_REFUSED with the engine's own words when it answered
 * with an error the caller does not handle (404 gone, 409 conflict…), DOCKER_UNAVAILABLE when it
 * did not answer.
 */
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';

/** The engine's HTTP status on a dockerode error, or undefined (socket down, timeout…). */
export function dockerStatus(error: unknown): number | undefined {
  const code = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === 'number' ? code : undefined;
}

/**
 * A PloyzError as is. An engine that answered with an HTTP error is DOCKER_REFUSED (it runs: the
 * message carries its words); no answer at all (socket down, timeout) is DOCKER_UNAVAILABLE.
 */
export function dockerError(error: unknown, what = 'the Docker engine failed'): PloyzError {
  if (error instanceof PloyzError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  const status = dockerStatus(error);
  if (status !== undefined) {
    return new PloyzError('DOCKER_REFUSED', `${what}: the engine answered ${status}: ${detail}`, {
      cause: error,
      details: { status },
    });
  }
  return new PloyzError('DOCKER_UNAVAILABLE', `${what}: ${detail}; check that dockerd runs`, {
    cause: error,
  });
}

/** A container's inspect, or null when the engine says it does not exist. */
export async function inspectOrNull(
  docker: Docker,
  nameOrId: string,
): Promise<Docker.ContainerInspectInfo | null> {
  try {
    return await docker.getContainer(nameOrId).inspect();
  } catch (error) {
    if (dockerStatus(error) === 404) return null;
    throw dockerError(error, `inspecting ${nameOrId}`);
  }
}
