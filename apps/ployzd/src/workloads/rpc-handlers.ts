/**
 * The participant side of @ployz/protocol's `deployCommands`: what a daemon does when asked to
 * start, probe or stop an instance. The RpcServer has already parsed the body with its strict
 * schema (RPC_BAD_REQUEST with the path of the problem); these handlers then trust nothing else
 * either:
 * - a body must name this machine (RPC_WRONG_MACHINE);
 * - volumes are created or adopted here, on this machine's storage; a directory-based driver's
 *   path is refused when it would leave the storage root, symlinks included (RPC_PATH_ESCAPE);
 * - an existing container is acted on only when its labels say it is a `ployz.managed` workload
 *   of the namespace, service and instance asked about, on this machine (RPC_NOT_MANAGED).
 * A refusal creates, stops and removes nothing.
 */
import { realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { workloadIdentityOf } from '@ployz/identity';
import type { CommandHandlers, DeployStartBody, deployCommands, RpcContext } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { inspectOrNull } from '../runtime/docker-errors.ts';
import { type LocalVolumes, localVolumeName } from '../storage/volumes.ts';
import type { DockerWorkloads } from './docker-workloads.ts';
import { readinessBudgetMs } from './readiness.ts';
import { deployServiceOf, type StartRequest } from './start-request.ts';

export interface DeployHandlerOptions {
  workloads: () => DockerWorkloads;
  docker: () => Docker;
  /** This machine's volumes (its storage driver); throws until the machine is initialised. */
  volumes: () => LocalVolumes;
}

/** RPC_WRONG_MACHINE unless the body names this machine. */
export function onlyThisMachine(asked: string, ctx: RpcContext): void {
  if (asked !== ctx.machine) {
    throw new PloyzError(
      'RPC_WRONG_MACHINE',
      `this is machine ${ctx.machine}; a '${ctx.command}' for machine ${asked} was refused`,
      { details: { machine: ctx.machine, asked, path: 'machine' } },
    );
  }
}

function within(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

async function realpathOrNull(path: string): Promise<string | null> {
  try {
    return await realpath(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/**
 * Refuses `dir` unless it lies strictly under `root`, both as written and as the file system
 * resolves the part of it that exists (a symlink out of the root is refused).
 */
export async function assertUnderRoot(root: string, dir: string, path: string): Promise<void> {
  const refuse = (why: string) =>
    new PloyzError('RPC_PATH_ESCAPE', `volume directory ${dir} ${why}; nothing was created`, {
      details: { path, dir, root },
    });
  const absRoot = resolve(root);
  if (!isAbsolute(dir) || resolve(dir) !== dir || !within(absRoot, dir)) {
    throw refuse(`is not under the volume root ${absRoot}`);
  }
  const realRoot = await realpathOrNull(absRoot);
  if (realRoot === null) return; // nothing under the root exists yet, so no link can lead out
  for (let at = dir; within(absRoot, at); at = dirname(at)) {
    const real = await realpathOrNull(at);
    if (real === null) continue;
    if (!within(realRoot, real)) throw refuse(`resolves to ${real}, outside the volume root`);
    return;
  }
}

/** Why an existing container may not be touched for this request, or null when it may. */
export function notOurWorkload(
  labels: Readonly<Record<string, string>>,
  asked: { namespace: string; service?: string; instance?: string; machine: string },
): string | null {
  const id = workloadIdentityOf(labels);
  if (id === null) return 'it is not a ployz.managed workload';
  if (id.namespace !== asked.namespace) return `it belongs to namespace ${id.namespace}`;
  if (asked.service !== undefined && id.service !== asked.service) return `it is service ${id.service}`;
  if (asked.instance !== undefined && id.instance !== asked.instance) return `it is instance ${id.instance}`;
  if (id.machine !== asked.machine) return `it belongs to machine ${id.machine}`;
  return null;
}

function refuseContainer(name: string, why: string, command: string): PloyzError {
  return new PloyzError(
    'RPC_NOT_MANAGED',
    `container ${name} was left alone: ${why} ('${command}' refused)`,
    {
      details: { container: name, reason: why },
    },
  );
}

/**
 * Why a container path may not be a mount target, or null. Docker reads a bind as
 * `source:target[:mode]`, so a `:` or `,` in the target would smuggle options in.
 */
export function badMountTarget(target: string): string | null {
  if (!target.startsWith('/') || target === '/') return 'must be an absolute path below /';
  if (/[:,\0\n\r]/.test(target)) return 'may not contain :, comma or control characters';
  if (target.split('/').some((part) => part === '..' || part === '.'))
    return 'may not contain . or .. segments';
  return null;
}

/** The start request the workloads run: volumes created or adopted on this machine's storage, checked. */
export async function startRequestOf(body: DeployStartBody, volumes: LocalVolumes): Promise<StartRequest> {
  if (body.service.namespace !== body.namespace) {
    throw new PloyzError(
      'RPC_BAD_REQUEST',
      `the service is of namespace ${body.service.namespace}, the request of ${body.namespace}`,
      { details: { path: 'service.namespace' } },
    );
  }
  for (const [i, m] of body.service.mounts.entries()) {
    const why = badMountTarget(m.target);
    if (why !== null) {
      throw new PloyzError('RPC_BAD_REQUEST', `mount target ${JSON.stringify(m.target)} ${why}`, {
        details: { path: `service.mounts.${i}.target` },
      });
    }
  }
  const service = deployServiceOf(body.service, body.volumes, volumes.pathRoot ?? '/');
  // Each volume is created or adopted on this machine's storage; its mount path replaces the
  // coordinator's placeholder, and a path-based driver's path must stay under its root.
  const mounts = [];
  for (const [i, m] of body.service.mounts.entries()) {
    const mounted = service.mounts[i];
    if (m.kind !== 'volume' || mounted?.kind !== 'bind') {
      if (mounted !== undefined) mounts.push(mounted);
      continue;
    }
    const declared = body.volumes.find((v) => v.name === m.volume);
    if (declared === undefined) {
      throw new PloyzError(
        'RPC_BAD_REQUEST',
        `volume ${m.volume} is mounted but not declared in the request`,
        {
          details: { path: `service.mounts.${i}.volume` },
        },
      );
    }
    const slot = declared.scope === 'per_slot' ? body.slot : null;
    if (volumes.pathRoot !== null) {
      await assertUnderRoot(
        volumes.pathRoot,
        join(volumes.pathRoot, localVolumeName(body.namespace, m.volume, slot)),
        `service.mounts.${i}.volume`,
      );
    }
    const local = await volumes.ensure({
      namespace: body.namespace,
      spec: declared,
      slot,
      copyUp: { image: body.service.image, target: m.target },
    });
    mounts.push({ ...mounted, source: local.path, per_slot: false });
  }
  return { ...body, service: { ...service, mounts } };
}

export function deployRpcHandlers(options: DeployHandlerOptions): CommandHandlers<typeof deployCommands> {
  return {
    deploy_start: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const request = await startRequestOf(body, options.volumes());
      const workloads = options.workloads();
      const name = workloads.name(body.instance);
      const existing = await inspectOrNull(options.docker(), name);
      if (existing !== null) {
        const why = notOurWorkload(existing.Config.Labels ?? {}, {
          namespace: body.namespace,
          service: body.service.name,
          instance: body.instance,
          machine: ctx.machine,
        });
        if (why !== null) throw refuseContainer(name, why, ctx.command);
      }
      return workloads.start(request);
    },
    deploy_ready: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const existing = await inspectOrNull(options.docker(), body.instance.container_id);
      if (existing !== null) {
        const labels = existing.Config.Labels ?? {};
        const id = workloadIdentityOf(labels);
        const why =
          id === null
            ? 'it is not a ployz.managed workload'
            : body.instance.name !== options.workloads().name(id.instance)
              ? `it is instance ${id.instance} of ${id.namespace}/${id.service}, not ${body.instance.name}`
              : notOurWorkload(labels, { namespace: id.namespace, machine: ctx.machine });
        if (why !== null) throw refuseContainer(body.instance.container_id, why, ctx.command);
      }
      await options
        .workloads()
        .waitReady(body.instance, body.readiness, AbortSignal.timeout(readinessBudgetMs(body.readiness)));
      return { ready: true };
    },
    deploy_stop: async (body, ctx) => {
      onlyThisMachine(body.machine, ctx);
      const workloads = options.workloads();
      const name = workloads.name(body.instance);
      const existing = await inspectOrNull(options.docker(), name);
      if (existing === null) return { stopped: true }; // already absent: success
      const why = notOurWorkload(existing.Config.Labels ?? {}, { ...body, machine: ctx.machine });
      if (why !== null) throw refuseContainer(name, why, ctx.command);
      await workloads.stop(body);
      return { stopped: true };
    },
  };
}
