/**
 * What may reach a storage command line: every name, label and number is checked here, before any
 * tool runs, so nothing a manifest or a peer sends is read as an option or a path by zfs or btrfs.
 * Names are `<namespace>/<volume>` (DNS labels, like the manifest's names); labels are tokens that
 * start with a letter or digit (never `-`, so never an option).
 */
import { PloyzError } from '@ployz/types';
import type { CreateVolume, Owner } from './port.ts';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const SNAPSHOT_LABEL = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** A 32-bit id short of the kernel's "no id" (-1). */
const MAX_ID = 0xffff_fffe;
/** Below this no filesystem's metadata fits; a quota this small is a unit mistake. */
export const MIN_QUOTA_BYTES = 1024 * 1024;

export interface VolumeName {
  namespace: string;
  volume: string;
  /** `<namespace>/<volume>` */
  full: string;
}

function invalid(message: string, details: Record<string, unknown>): PloyzError {
  return new PloyzError('STORAGE_INVALID', message, { details });
}

export function parseVolumeName(name: string): VolumeName {
  const parts = name.split('/');
  const [namespace, volume] = parts;
  if (
    parts.length !== 2 ||
    namespace === undefined ||
    volume === undefined ||
    !DNS_LABEL.test(namespace) ||
    !DNS_LABEL.test(volume)
  ) {
    throw invalid(
      `volume name ${JSON.stringify(name)} must be <namespace>/<volume>, each a DNS label (lowercase letters, digits and -)`,
      { name },
    );
  }
  return { namespace, volume, full: name };
}

export function checkSnapshotLabel(label: string): string {
  if (!SNAPSHOT_LABEL.test(label)) {
    throw invalid(
      `snapshot label ${JSON.stringify(label)} must be 1-128 letters, digits, '_', '.' or '-', starting with a letter or digit`,
      { label },
    );
  }
  return label;
}

export function checkOwner(owner: Owner): Owner {
  for (const [field, id] of [
    ['uid', owner.uid],
    ['gid', owner.gid],
  ] as const) {
    if (!Number.isInteger(id) || id < 0 || id > MAX_ID) {
      throw invalid(`volume owner ${field} ${String(id)} must be an integer from 0 to ${MAX_ID}`, { owner });
    }
  }
  return owner;
}

export function checkMode(mode: number): number {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) {
    throw invalid(`volume mode ${String(mode)} must be permission bits from 0 to 0o7777 (e.g. 0o750)`, {
      mode,
    });
  }
  return mode;
}

export function checkQuota(quotaBytes: number): number {
  if (!Number.isSafeInteger(quotaBytes) || quotaBytes < MIN_QUOTA_BYTES) {
    throw invalid(`volume quota ${String(quotaBytes)} must be a whole number of bytes, at least 1 MiB`, {
      quotaBytes,
    });
  }
  return quotaBytes;
}

export function checkCreate(spec: CreateVolume): VolumeName {
  const name = parseVolumeName(spec.name);
  if (spec.quotaBytes !== null) checkQuota(spec.quotaBytes);
  checkOwner(spec.owner);
  checkMode(spec.mode);
  return name;
}

/** A driver's handle `<root>/<namespace>/<volume>` back to its name; anything else is refused. */
/**
 * Where a removed volume's final copy is kept under a directory root (btrfs, dir):
 * `<root>/.retired/<ns>/<vol>-<label>`; names are DNS labels, so `.retired` never collides.
 */
export function retiredPath(root: string, name: VolumeName, label: string): string {
  return `${root}/.retired/${name.namespace}/${name.volume}-${checkSnapshotLabel(label)}`;
}

export function nameUnderRoot(root: string, dataset: string): VolumeName {
  const prefix = `${root}/`;
  if (!dataset.startsWith(prefix)) {
    throw invalid(`${JSON.stringify(dataset)} is not a volume of this driver (root ${root})`, {
      dataset,
      root,
    });
  }
  return parseVolumeName(dataset.slice(prefix.length));
}

/** The refusal of a quota below what is used, with both numbers. */
export function checkQuotaNotBelowUsed(dataset: string, quotaBytes: number, usedBytes: number): void {
  if (quotaBytes < usedBytes) {
    throw invalid(
      `quota ${quotaBytes} bytes is below the ${usedBytes} bytes ${dataset} already uses; a quota can grow, or shrink only down to what is used`,
      { dataset, quotaBytes, usedBytes },
    );
  }
}
