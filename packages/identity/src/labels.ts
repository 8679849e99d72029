/**
 * Docker label names that carry a managed container's identity (DESIGN.md §3, seed 000).
 * Containers without `ployz.managed=true` are never touched.
 */
export const LABELS = {
  managed: 'ployz.managed',
  kind: 'ployz.kind',
  component: 'ployz.component',
  installation: 'ployz.installation',
  configHash: 'ployz.config-hash',
  parentContainerId: 'ployz.parent-container-id',
  namespace: 'ployz.namespace',
  service: 'ployz.service',
  slot: 'ployz.slot',
  revision: 'ployz.revision',
  deploy: 'ployz.deploy',
  instance: 'ployz.instance',
  machine: 'ployz.machine',
} as const;

export type LabelKey = keyof typeof LABELS;
export type LabelName = (typeof LABELS)[LabelKey];

export const CONTAINER_KINDS = ['system', 'workload'] as const;
export type ContainerKind = (typeof CONTAINER_KINDS)[number];

export interface WorkloadIdentity {
  namespace: string;
  service: string;
  slot: number;
  revision: string;
  deploy: string;
  instance: string;
  machine: string;
}

/** The labels every workload container carries (without the config hash, added by `labelWithConfigHash`). */
export function workloadLabels(id: WorkloadIdentity): Record<string, string> {
  return {
    [LABELS.managed]: 'true',
    [LABELS.kind]: 'workload',
    [LABELS.namespace]: id.namespace,
    [LABELS.service]: id.service,
    [LABELS.slot]: String(id.slot),
    [LABELS.revision]: id.revision,
    [LABELS.deploy]: id.deploy,
    [LABELS.instance]: id.instance,
    [LABELS.machine]: id.machine,
  };
}

/** Reads a workload's identity back from its labels; null when it is not a managed workload. */
export function workloadIdentityOf(labels: Readonly<Record<string, string>>): WorkloadIdentity | null {
  if (labels[LABELS.managed] !== 'true' || labels[LABELS.kind] !== 'workload') return null;
  const get = (k: LabelName) => labels[k];
  const slot = Number(get(LABELS.slot));
  const fields = [
    LABELS.namespace,
    LABELS.service,
    LABELS.revision,
    LABELS.deploy,
    LABELS.instance,
    LABELS.machine,
  ];
  if (fields.some((f) => !get(f)) || !Number.isInteger(slot) || slot < 0) return null;
  return {
    namespace: get(LABELS.namespace) ?? '',
    service: get(LABELS.service) ?? '',
    slot,
    revision: get(LABELS.revision) ?? '',
    deploy: get(LABELS.deploy) ?? '',
    instance: get(LABELS.instance) ?? '',
    machine: get(LABELS.machine) ?? '',
  };
}
