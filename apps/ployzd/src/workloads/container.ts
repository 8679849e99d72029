/**
 * The Docker create options of a workload container. Pure: a start request and this machine's
 * settings and the fixed bridge address Ployz allocated (addresses.ts) in, dockerode options out.
 * Identity lives in labels (@ployz/identity); the container sits on the `ployz` bridge at that
 * address (so a restarted engine gives it back) with ployz-dns (bridge `.2`) as its resolver.
 */
import { LABELS, workloadLabels } from '@ployz/identity';
import type { RestartPolicy } from '@ployz/types';
import type Docker from 'dockerode';
import type { StartRequest } from './start-request.ts';

export interface WorkloadSettings {
  /** Container name prefix (`ployz-`). */
  containerPrefix: string;
  /** The machine's bridge network (`ployz`). */
  bridge: string;
  /** ployz-dns on the bridge (`.2`); null: Docker's default resolver. */
  dns: string | null;
  /** Extra labels on every workload (tests mark their containers with these). */
  extraLabels?: Record<string, string>;
}

/**
 * The one name of a workload container: the prefix (`ployz-`) and the instance id, which already
 * reads `<ns>-<svc>-<slot>-<suffix>` (@ployz/identity). Containers are found by their labels, never
 * by this name, so the name can change without touching adoption.
 */
export function workloadName(prefix: string, instance: string): string {
  return `${prefix}${instance}`;
}

const MIB = 1024 * 1024;

/** The manifest's restart policy (@ployz/types) as Docker names it. */
const DOCKER_RESTART: Record<RestartPolicy, string> = {
  always: 'always',
  unless_stopped: 'unless-stopped',
  on_failure: 'on-failure',
  never: 'no',
};

export function workloadCreateOptions(
  req: StartRequest,
  settings: WorkloadSettings,
  address: string,
): Docker.ContainerCreateOptions {
  const svc = req.service;
  const labels = {
    ...(settings.extraLabels ?? {}),
    ...workloadLabels({
      namespace: req.namespace,
      service: svc.name,
      slot: req.slot,
      revision: req.revision,
      deploy: req.deploy,
      instance: req.instance,
      machine: req.machine,
    }),
  };
  const env = {
    ...svc.env,
    PLOYZ_NAMESPACE: req.namespace,
    PLOYZ_SERVICE: svc.name,
    PLOYZ_SLOT: String(req.slot),
    PLOYZ_INSTANCE: req.instance,
    PLOYZ_REVISION: req.revision,
    PLOYZ_MACHINE: req.machine,
  };
  const binds: string[] = [];
  const tmpfs: Record<string, string> = {};
  for (const m of svc.mounts) {
    if (m.kind === 'bind') {
      const source = m.per_slot ? `${m.source}-${req.slot}` : m.source;
      binds.push(`${source}:${m.target}${m.read_only ? ':ro' : ''}`);
    } else {
      tmpfs[m.target] = m.size_bytes === null ? '' : `size=${m.size_bytes}`;
    }
  }
  const exposed: Record<string, object> = {};
  for (const port of Object.values(svc.ports)) exposed[`${port}/tcp`] = {};
  return {
    name: workloadName(settings.containerPrefix, req.instance),
    Image: svc.image,
    ...(svc.entrypoint !== null ? { Entrypoint: svc.entrypoint } : {}),
    ...(svc.command !== null ? { Cmd: svc.command } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: labels,
    Hostname: `${svc.name}-${req.slot}`,
    ExposedPorts: exposed,
    StopTimeout: Math.ceil(svc.stop_grace_ms / 1000),
    HostConfig: {
      NetworkMode: settings.bridge,
      ...(settings.dns !== null ? { Dns: [settings.dns] } : {}),
      Binds: binds,
      Tmpfs: tmpfs,
      ...(svc.resources.cpus !== undefined ? { NanoCpus: Math.round(svc.resources.cpus * 1e9) } : {}),
      ...(svc.resources.memory_mb !== undefined ? { Memory: svc.resources.memory_mb * MIB } : {}),
      RestartPolicy: { Name: DOCKER_RESTART[svc.restart], MaximumRetryCount: 0 },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
    NetworkingConfig: { EndpointsConfig: { [settings.bridge]: { IPAMConfig: { IPv4Address: address } } } },
  };
}

/** True when the labels say this container is the workload instance `instance`. */
export function isWorkloadInstance(labels: Readonly<Record<string, string>>, instance: string): boolean {
  return (
    labels[LABELS.managed] === 'true' &&
    labels[LABELS.kind] === 'workload' &&
    labels[LABELS.instance] === instance
  );
}
