import { Args } from '@oclif/core';
import type { DeployDetailView } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';
import { detailLines } from '../../deploy-output.ts';

export default class DeployShow extends DaemonCommand {
  static override description =
    'Show one deploy: status, phases, commits (services, revisions, slots), manifest hash, who and when.';
  static override examples = ['<%= config.bin %> deploy show dep-0mwr1svvsabcdefgh'];
  static override args = { id: Args.string({ description: 'deploy id (see `deploy ls`)', required: true }) };

  async run(): Promise<DeployDetailView> {
    const { args, flags } = await this.parse(DeployShow);
    const detail = await this.client(flags).call('deployShow', { id: args.id });
    if (!this.jsonEnabled()) for (const line of detailLines(detail)) this.log(line);
    return detail;
  }
}
