import { Errors, Flags, type Interfaces } from '@oclif/core';
import type { DeployPlanView } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';
import { planLines, previewExitCode } from '../../deploy-output.ts';
import { readManifest } from './index.ts';

export default class DeployPreview extends DaemonCommand {
  static override description =
    'Plan a manifest against stored intent and change nothing: per service create / replace / update / remove / unchanged, slots and machines, phases. ' +
    'Exit code 0 = no changes (the cluster matches the manifest), 3 = changes pending; 1/2 = errors.';
  static override examples = [
    '<%= config.bin %> deploy preview -f deploy.toml',
    '<%= config.bin %> deploy preview -f deploy.toml --json',
  ];
  static override flags = {
    file: Flags.string({ char: 'f', description: 'manifest (TOML or JSON)', required: true }),
  };

  /** Exit 3 is an answer, not an error: no error JSON after the plan. */
  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    if (err instanceof Errors.ExitError && err.oclif.exit === 3) throw err;
    return super.catch(err);
  }

  async run(): Promise<DeployPlanView> {
    const { flags } = await this.parse(DeployPreview);
    const manifest = await readManifest(flags.file);
    const plan = await this.client(flags).call('deployPreview', {
      manifest,
      filename: flags.file,
      format: null,
      actor: null,
    });
    if (!this.jsonEnabled()) for (const line of planLines(plan)) this.log(line);
    // Exit 3 when there is something to change (`terraform plan -detailed-exitcode` style);
    // `exit` skips oclif's printing of the return value, so print the JSON here.
    if (previewExitCode(plan) !== 0) {
      if (this.jsonEnabled()) this.logJson(plan);
      this.exit(3);
    }
    return plan;
  }
}
