/**
 * Data-plane images from a registry (docs/adr/0017-image-versions.md): a component image this
 * machine lacks is pulled (dockerode, progress reported per layer), then checked before anything
 * uses it — the digest the registry named in the pull is one of the image's repo digests, and the
 * image's version label is the version this ployzd expects. A check that fails untags what was
 * pulled, so nothing is adopted or created from it (IMAGE_VERIFY_FAILED).
 */
import { OCI_LABELS } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerStatus } from '../runtime/docker-errors.ts';

/** One line of Docker's pull progress, reduced to what a log needs. */
export interface PullProgress {
  image: string;
  /** `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: sha256:…`, `Status: …` */
  status: string;
  layer: string | null;
  current: number | null;
  total: number | null;
}

export interface PulledImage {
  ref: string;
  id: string;
  digest: string;
  version: string | null;
  /** Wall time of the pull, ms. */
  ms: number;
}

/** `host[:port]/path[:tag]` → `host[:port]/path` (Docker's repo-digest prefix). */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
}

type PullFailure = 'unreachable' | 'unauthorized' | 'not_found' | 'failed';

/** Why a pull failed, from Docker's message (its API gives no code). */
export function pullFailure(message: string): PullFailure {
  const m = message.toLowerCase();
  if (/unauthorized|authentication required|denied|no basic auth credentials/.test(m)) return 'unauthorized';
  if (/manifest unknown|not found|name unknown|does not exist/.test(m)) return 'not_found';
  if (
    /connection refused|no such host|i\/o timeout|dial tcp|timeout|network is unreachable|eof|connection reset/.test(
      m,
    )
  )
    return 'unreachable';
  return 'failed';
}

const HINTS: Record<PullFailure, string> = {
  unreachable: 'check that the registry answers from this machine (curl http://<registry>/v2/)',
  unauthorized: 'the data-plane images are pulled without credentials: make the ployz/ repositories readable',
  not_found: 'push this version there first: bash scripts/images.sh --push <registry>',
  failed: 'see the message; the pull is tried again at the next reconcile',
};

function failed(ref: string, message: string): PloyzError {
  const reason = pullFailure(message);
  return new PloyzError('IMAGE_PULL_FAILED', `could not pull ${ref}: ${message.trim()}; ${HINTS[reason]}`, {
    details: { image: ref, reason },
  });
}

/**
 * Pull `ref`, report progress, verify it and return its id. `expectedVersion` null skips the
 * version check (an image this ployzd does not version, e.g. one named by `--image-<component>`).
 */
export async function pullImage(
  docker: Docker,
  ref: string,
  options: { expectedVersion: string | null; onProgress?: (p: PullProgress) => void },
): Promise<PulledImage> {
  const t0 = Date.now();
  let digest: string | null = null;
  try {
    const stream = (await docker.pull(ref)) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
        stream,
        (error: Error | null) => (error ? reject(error) : resolve()),
        (event: {
          status?: string;
          id?: string;
          error?: string;
          progressDetail?: { current?: number; total?: number };
        }) => {
          if (typeof event.error === 'string') return; // followProgress rejects with it
          const status = event.status ?? '';
          const d = /^Digest: (sha256:[0-9a-f]{64})$/.exec(status);
          if (d?.[1] !== undefined) digest = d[1];
          options.onProgress?.({
            image: ref,
            status,
            layer: event.id ?? null,
            current: event.progressDetail?.current ?? null,
            total: event.progressDetail?.total ?? null,
          });
        },
      );
    });
  } catch (error) {
    if (error instanceof PloyzError) throw error;
    const status = dockerStatus(error);
    const message = error instanceof Error ? error.message : String(error);
    throw failed(ref, status === undefined ? message : `${message} (HTTP ${status})`);
  }
  if (digest === null) throw failed(ref, 'the pull reported no digest');
  const info = await docker.getImage(ref).inspect();
  const untag = async () => {
    await docker
      .getImage(ref)
      .remove({ noprune: false })
      .catch(() => {});
  };
  const repoDigest = `${repositoryOf(ref)}@${digest}`;
  if (!(info.RepoDigests ?? []).includes(repoDigest)) {
    await untag();
    throw new PloyzError(
      'IMAGE_VERIFY_FAILED',
      `${ref} was pulled, but its repo digests (${(info.RepoDigests ?? []).join(', ') || 'none'}) do not include ${repoDigest}, the digest the registry named; it was untagged and nothing was replaced`,
      { details: { image: ref, reason: 'digest', digest } },
    );
  }
  const version = info.Config?.Labels?.[OCI_LABELS.version] ?? null;
  if (options.expectedVersion !== null && version !== options.expectedVersion) {
    await untag();
    throw new PloyzError(
      'IMAGE_VERIFY_FAILED',
      `${ref} (${digest}) carries ${OCI_LABELS.version}=${version ?? '(none)'}, but this ployzd runs version ${options.expectedVersion} and expects its data plane at that version; it was untagged and nothing was replaced. Push the images built from the same checkout: bash scripts/images.sh --push <registry>`,
      { details: { image: ref, reason: 'version', digest, version, expected: options.expectedVersion } },
    );
  }
  return { ref, id: info.Id, digest, version, ms: Date.now() - t0 };
}

/** True when the image is present locally (by reference or id). */
export async function hasImage(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (error) {
    if (dockerStatus(error) === 404) return false;
    throw error;
  }
}
