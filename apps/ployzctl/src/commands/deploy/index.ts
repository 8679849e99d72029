import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import type { ApplyResultView, DeployProgress } from '@ployz/protocol';
import { assertManifestSize, PloyzError } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { eventLine } from '../../deploy-output.ts';

/** Reads the manifest text; over the size limit is `MANIFEST_TOO_LARGE` here, before sending. */
export async function readManifest(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new PloyzError(
      'MANIFEST_NOT_FOUND',
      `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? cause}); pass the manifest with -f <path>`,
      { cause },
    );
  }
  assertManifestSize(text, file);
  return text;
}

export type DeployStreamItem =
  | { kind: 'progress'; progress: DeployProgress }
  | { kind: 'result'; result: ApplyResultView };

/**
 * Prints a deploy (apply or rollback) as it streams: live progress lines, or with --json one JSON
 * event per line (NDJSON) ending with a `done` line. An error is thrown to the command's `catch`
 * (DaemonCommand), which prints it (with --json: the last line, `error`) and exits with its status:
 * 2 for user errors and conflicts (lease held, readiness failed), 1 otherwise.
 */
export async function streamDeploy(json: boolean, items: AsyncIterable<DeployStreamItem>): Promise<void> {
  const started = Date.now();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for await (const item of items) {
    if (item.kind === 'progress') {
      const e = item.progress;
      if (json) out(JSON.stringify(e));
      else {
        const line = eventLine(e);
        if (line !== null) out(line);
      }
      continue;
    }
    const r = item.result;
    if (json) out(JSON.stringify({ type: 'done', ...r }));
    else if (r.noop) out('No changes: nothing was deployed.');
    else
      out(
        `Deploy ${r.status?.deploy_id} ${r.status?.state} in ${((Date.now() - started) / 1000).toFixed(2)} s.`,
      );
  }
}

export default class Deploy extends DaemonCommand {
  static override description =
    "Apply a manifest: the nine steps (preview, lease, probe, applying status, phases, checkpoints, final commit, routing, cleanup), shown live. A manifest of an earlier committed deploy with volumes is that deploy's rollback: its volumes revert to the snapshots taken at its commit (the preview says which).";
  static override examples = [
    '<%= config.bin %> deploy -f deploy.toml',
    '<%= config.bin %> deploy -f deploy.toml --json   # NDJSON: one event per line, last line done|error',
    '<%= config.bin %> deploy -f deploy.toml --start-concurrency 2   # gentler on a loaded machine',
  ];
  static override ndjson = true;
  static override flags = {
    file: Flags.string({ char: 'f', description: 'manifest (TOML or JSON)', required: true }),
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
    'start-concurrency': Flags.integer({
      description:
        'cold starts in flight per machine (create → start → ready, pipelined); default: four per core of each machine',
      min: 1,
      max: 256,
    }),
    'without-volume-revert': Flags.boolean({
      description:
        "when the manifest is an earlier deploy's (a rollback): restore the services only, volumes without that deploy's snapshot (dir storage) keep their data",
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Deploy);
    const manifest = await readManifest(flags.file);
    const input = {
      manifest,
      filename: flags.file,
      format: null,
      actor: process.env.USER ?? 'ployzctl',
      start_concurrency: flags['start-concurrency'] ?? null,
      without_volume_revert: flags['without-volume-revert'],
    };
    await streamDeploy(flags.json, this.client(flags).stream('deployApply', input));
  }
}
