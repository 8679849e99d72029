import { Args, Command, Flags } from '@oclif/core';
import { socketFlag } from '../../daemon-command.ts';
import { streamDeploy } from './index.ts';

export default class DeployRollback extends Command {
  static override description =
    'Roll back to a committed deploy: rebuild its services from stored revisions and apply them as a new deploy whose commit records `rollback_of`. History stays intact.';
  static override examples = ['<%= config.bin %> deploy rollback dep-0mwr1svvsabcdefgh'];
  static override args = {
    id: Args.string({ description: 'the deploy to restore (see `deploy ls`)', required: true }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
    socket: socketFlag,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(DeployRollback);
    const input = { deploy_id: args.id, actor: process.env.USER ?? 'ployzctl' };
    await streamDeploy(this, flags, (client) => client.stream('deployRollback', input));
  }
}
