import { Flags } from '@oclif/core';
import type { DeployPlanView } from '@ployz/protocol';
import { EXIT_STATUS } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { planLines, previewExitCode } from '../../deploy-output.ts';
import { readManifest } from './index.ts';

export default class DeployPreview extends DaemonCommand {
  static override description =
    'Plan a manifest against stored intent and change nothing: per service create / replace / update / remove / unchanged, slots and machines, phases, and per volume its snapshot or, for a rollback (a manifest of an earlier deploy), the snapshot it reverts to. ' +
    'Exit code 0 = no changes (the cluster matches the manifest), 3 = changes pending; 1/2 = errors.';
  static override examples = [
    '<%= config.bin %> deploy preview -f deploy.toml',
    '<%= config.bin %> deploy preview -f deploy.toml --json',
  ];
  static override flags = {
    file: Flags.string({ char: 'f', description: 'manifest (TOML or JSON)', required: true }),
    'without-volume-revert': Flags.boolean({
      description:
        "when the manifest is an earlier deploy's (a rollback): restore the services only, volumes without that deploy's snapshot (dir storage) keep their data",
      default: false,
    }),
  };

  async run(): Promise<DeployPlanView> {
    const { flags } = await this.parse(DeployPreview);
    const manifest = await readManifest(flags.file);
    const plan = await this.client(flags).call('deployPreview', {
      manifest,
      filename: flags.file,
      format: null,
      actor: null,
      without_volume_revert: flags['without-volume-revert'],
    });
    if (!this.jsonEnabled()) for (const line of planLines(plan)) this.log(line);
    // Exit 3 when there is something to change (`terraform plan -detailed-exitcode` style);
    // `exit` skips oclif's printing of the return value, so print the JSON here.
    const status = previewExitCode(plan);
    if (status !== EXIT_STATUS.OK) {
      if (this.jsonEnabled()) this.logJson(plan);
      this.exit(status);
    }
    return plan;
  }
}
