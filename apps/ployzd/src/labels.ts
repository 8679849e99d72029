/** Label names come from @ployz/identity (`LABELS`); re-exported under the daemon's name. */
export { type ContainerKind, LABELS as LABEL } from '@ployz/identity';
