import { Args, Flags } from '@oclif/core';
import { DaemonCommand } from '../../daemon-command.ts';
import { streamDeploy } from './index.ts';

export default class DeployRollback extends DaemonCommand {
  static override description =
    'Roll back to a committed deploy: rebuild its services from stored revisions, revert its volumes to the snapshots taken at its commit (writers stopped first), and apply them as a new deploy whose commit records `rollback_of` and the snapshots restored. History stays intact: every snapshot survives.';
  static override examples = ['<%= config.bin %> deploy rollback dep-0mwr1svvsabcdefgh'];
  static override ndjson = true;
  static override args = {
    id: Args.string({ description: 'the deploy to restore (see `deploy ls`)', required: true }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
    'without-volume-revert': Flags.boolean({
      description:
        'restore the services only: volumes without a snapshot of that deploy (dir storage, or newer volumes) keep their data',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DeployRollback);
    const input = {
      deploy_id: args.id,
      actor: process.env.USER ?? 'ployzctl',
      without_volume_revert: flags['without-volume-revert'],
    };
    await streamDeploy(flags.json, this.client(flags).stream('deployRollback', input));
  }
}
