import { readFile } from 'node:fs/promises';
import { Command, Flags } from '@oclif/core';
import { type ApplyResultView, type DeployProgress, LocalApiClient } from '@ployz/protocol';
import { isPloyzError, PloyzError } from '@ployz/types';
import { socketFlag } from '../../daemon-command.ts';
import { eventLine } from '../../deploy-output.ts';

export async function readManifest(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (cause) {
    throw new PloyzError(
      'MANIFEST_NOT_FOUND',
      `cannot read ${file} (${(cause as NodeJS.ErrnoException).code ?? cause}); pass the manifest with -f <path>`,
      {
        cause,
      },
    );
  }
}

export type DeployStreamItem =
  | { kind: 'progress'; progress: DeployProgress }
  | { kind: 'result'; result: ApplyResultView };

/**
 * Streams a deploy (apply or rollback): live progress lines, or with --json one JSON event per
 * line (NDJSON) ending with a `result` or `error` line. Exit 0 committed (or no changes), 1 for
 * internal/transient failures, 2 for user errors and conflicts (lease held, readiness failed).
 */
export async function streamDeploy(
  cmd: Command,
  flags: { socket: string; json: boolean },
  open: (client: LocalApiClient) => AsyncIterable<DeployStreamItem>,
): Promise<void> {
  const client = new LocalApiClient({ socketPath: flags.socket });
  const started = Date.now();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    for await (const item of open(client)) {
      if (item.kind === 'progress') {
        const e = item.progress;
        if (flags.json) out(JSON.stringify(e));
        else {
          const line = eventLine(e);
          if (line !== null) out(line);
        }
        continue;
      }
      const r = item.result;
      if (flags.json) out(JSON.stringify({ type: 'done', ...r }));
      else if (r.noop) out('No changes: nothing was deployed.');
      else
        out(
          `Deploy ${r.status?.deploy_id} ${r.status?.state} in ${((Date.now() - started) / 1000).toFixed(2)} s.`,
        );
    }
  } catch (error) {
    if (!isPloyzError(error)) throw error;
    if (flags.json) out(JSON.stringify({ type: 'error', error: error.toJSON() }));
    else {
      const state = error.details?.state;
      process.stderr.write(`${error.code}: ${error.message}\n`);
      if (state === 'failed')
        process.stderr.write(
          'Deploy failed before its first commit: nothing live changed, candidates were removed.\n',
        );
      if (state === 'FailedAfterCheckpoint') {
        process.stderr.write(
          'Deploy FailedAfterCheckpoint: committed facts are durable and live; see `ployzctl deploy show`.\n',
        );
      }
    }
    cmd.exit(error.kind === 'user' || error.kind === 'conflict' ? 2 : 1);
  } finally {
    await client.close().catch(() => {});
  }
}

export default class Deploy extends Command {
  static override description =
    'Apply a manifest: the nine steps (preview, lease, probe, applying status, phases, checkpoints, final commit, routing, cleanup), shown live.';
  static override examples = [
    '<%= config.bin %> deploy -f deploy.toml',
    '<%= config.bin %> deploy -f deploy.toml --json   # NDJSON: one event per line, last line done|error',
  ];
  static override flags = {
    file: Flags.string({ char: 'f', description: 'manifest (TOML or JSON)', required: true }),
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
    socket: socketFlag,
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Deploy);
    let manifest: string;
    try {
      manifest = await readManifest(flags.file);
    } catch (error) {
      if (!isPloyzError(error)) throw error;
      process.stderr.write(`${error.code}: ${error.message}\n`);
      return this.exit(2);
    }
    const input = { manifest, filename: flags.file, format: null, actor: process.env.USER ?? 'ployzctl' };
    await streamDeploy(this, flags, (client) => client.stream('deployApply', input));
  }
}
