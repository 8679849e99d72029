/**
 * Docker label names that encode a managed container's identity (seed 000). Kept here until
 * @ployz/identity exports the shared names; the values are the contract, not the constant names.
 */
export const LABEL = {
  managed: 'ployz.managed',
  kind: 'ployz.kind',
  component: 'ployz.component',
  installation: 'ployz.installation',
  configHash: 'ployz.config-hash',
  parentContainerId: 'ployz.parent-container-id',
} as const;

export type ContainerKind = 'system' | 'workload';
