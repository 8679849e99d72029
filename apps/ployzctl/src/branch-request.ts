/**
 * What `branch preview` and `branch apply` share: their arguments and flags, and the request body
 * they send (the daemon checks volume names and modes, hostnames and the manifest).
 */
import { Args, Flags } from '@oclif/core';
import type { BranchRequest } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { readManifest } from './commands/deploy/index.ts';

export const branchArgs = {
  source: Args.string({ description: 'the namespace to branch (its last committed deploy)', required: true }),
  destination: Args.string({ description: 'the new namespace', required: true }),
};

export const branchFlags = {
  volume: Flags.string({
    description:
      'name=clone (default for the source volumes: a copy-on-write clone of its snapshot at the last commit) or name=empty; repeatable',
    multiple: true,
  }),
  'host-suffix': Flags.string({
    description:
      'give the branch the source hostnames with this label in front (shop.example.com → <suffix>.shop.example.com); without it, and without -f, the branch has no hostnames',
  }),
  file: Flags.string({
    char: 'f',
    description:
      'a manifest of the branch namespace: its services and volumes replace the source ones of the same name, new ones are added',
  }),
};

/** `--volume name=mode` (repeatable) as a record; the daemon says whether the names and modes are right. */
export function volumeModes(values: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const at = v.indexOf('=');
    if (at <= 0) {
      throw new PloyzError('BRANCH_VOLUME_UNKNOWN', `--volume ${v}: write it as name=clone or name=empty`, {
        details: { volume: v },
      });
    }
    out[v.slice(0, at)] = v.slice(at + 1);
  }
  return out;
}

export async function branchRequest(
  args: { source: string; destination: string },
  flags: { volume?: string[] | undefined; 'host-suffix'?: string | undefined; file?: string | undefined },
): Promise<BranchRequest> {
  return {
    source: args.source,
    destination: args.destination,
    volumes: volumeModes(flags.volume),
    host_suffix: flags['host-suffix'] ?? null,
    manifest: flags.file === undefined ? null : await readManifest(flags.file),
    filename: flags.file ?? null,
    format: null,
    actor: process.env.USER ?? 'ployzctl',
    start_concurrency: null,
  };
}
