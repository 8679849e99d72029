/** `ployzctl registry ls` and `login` as lines: host, username, when and by which machine. */
import type { RegistryLoginResult, RegistryView } from '@ployz/protocol';

export const REGISTRY_HEADER = `${'HOST'.padEnd(32)} ${'USERNAME'.padEnd(20)} ${'UPDATED'.padEnd(24)} BY`;

export function registryRow(r: RegistryView): string {
  return `${r.host.padEnd(32)} ${r.username.padEnd(20)} ${r.updated_at.padEnd(24)} ${r.updated_by}`;
}

export function registryLoginLine(r: RegistryLoginResult): string {
  const checked = r.verified ? 'the registry accepted them' : 'not checked with the registry (--no-verify)';
  return `Stored credentials for ${r.host} as ${r.username} (sealed under the installation key; ${checked}). Deploys pull its images with them on every machine.`;
}
