export { canonicalJson, type JsonValue } from './canonical-json.ts';
export {
  type ContainerMount,
  type ContainerPort,
  type ContainerSpec,
  configHash,
  configHashInput,
  labelWithConfigHash,
} from './container-spec.ts';
export { sha256Hex, taggedHash } from './digest.ts';
export { commitId, deployId, deployIdTime, instanceId, randomBase36 } from './ids.ts';
export {
  CONTAINER_KINDS,
  type ContainerKind,
  LABELS,
  type LabelKey,
  type LabelName,
  type WorkloadIdentity,
  workloadIdentityOf,
  workloadLabels,
} from './labels.ts';
export { manifestHash, revisionId, revisionIdOf } from './revision.ts';
export { InstallationKey, redactSpec, sealSpec, unsealSpec } from './sealed-secrets.ts';
export { escapeToken, unescapeToken } from './tokens.ts';
