import type { BranchPlanView } from '@ployz/protocol';
import { EXIT_STATUS } from '@ployz/types';
import { branchPlanLines } from '../../branch-output.ts';
import { branchArgs, branchFlags, branchRequest } from '../../branch-request.ts';
import { DaemonCommand } from '../../daemon-command.ts';
import { previewExitCode } from '../../deploy-output.ts';

export default class BranchPreview extends DaemonCommand {
  static override description =
    "Plan a branch and change nothing: the new namespace's services (the source's last committed revisions, or the manifest's), each volume cloned from the source's snapshot at its last commit or empty, how each route changes (hostnames are never copied), the machines and the phases. " +
    'Exit code 3 = changes pending (a branch always has some), 1/2 = errors (docs/errors.md: BRANCH_*).';
  static override examples = [
    '<%= config.bin %> branch preview shop shop-pr-7 --host-suffix pr-7',
    '<%= config.bin %> branch preview shop shop-pr-7 --volume cache=empty',
    '<%= config.bin %> branch preview shop shop-pr-7 -f pr-7.toml --json',
  ];
  static override args = branchArgs;
  static override flags = branchFlags;

  async run(): Promise<BranchPlanView> {
    const { args, flags } = await this.parse(BranchPreview);
    const view = await this.client(flags).call('branchPreview', await branchRequest(args, flags));
    if (!this.jsonEnabled()) for (const line of branchPlanLines(view)) this.log(line);
    const status = previewExitCode(view.plan);
    if (status !== EXIT_STATUS.OK) {
      if (this.jsonEnabled()) this.logJson(view);
      this.exit(status);
    }
    return view;
  }
}
