import { Args, Flags } from '@oclif/core';
import { DaemonCommand } from '../../daemon-command.ts';
import { planLines } from '../../deploy-output.ts';
import { streamDeploy } from '../deploy/index.ts';

export default class NamespaceRm extends DaemonCommand {
  static override description =
    'Remove a namespace: a deploy like any other (plan shown first, lease, a commit that records every removed service, routing events that release its hostnames, its instances drained and removed), so history keeps it (ployzctl deploy ls -n <ns>) and deploy rollback <id> can bring it back. Its volumes and their snapshots are kept unless --delete-volumes: then each volume gets a final snapshot <deploy>-final and is deleted after the commit (the output says where the final copy is kept; docs/operations.md).';
  static override examples = [
    '<%= config.bin %> namespace rm shop --preview   # what would go',
    '<%= config.bin %> namespace rm shop',
    '<%= config.bin %> namespace rm shop --json      # NDJSON deploy events, last line done|error',
    '<%= config.bin %> namespace rm shop --delete-volumes --preview   # the volumes that go, the final snapshot',
  ];
  static override ndjson = true;
  static override args = {
    namespace: Args.string({ description: 'the namespace to remove', required: true }),
  };
  static override flags = {
    preview: Flags.boolean({
      description: 'only print the plan: the services and instances that would go',
      default: false,
    }),
    'delete-volumes': Flags.boolean({
      description:
        'also delete its volumes after the commit, each after a final snapshot <deploy>-final that is kept (btrfs: a read-only subvolume; zfs: the unmounted dataset; dir: the directory)',
      default: false,
    }),
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(NamespaceRm);
    const input = {
      namespace: args.namespace,
      actor: null,
      preview: flags.preview,
      delete_volumes: flags['delete-volumes'],
    };
    const client = this.client(flags);
    if (flags.preview) {
      const result = await client.call('namespaceRemove', input);
      if (flags.json) process.stdout.write(`${JSON.stringify(result.plan)}\n`);
      else for (const line of planLines(result.plan)) this.log(line);
      return;
    }
    await streamDeploy(flags.json, client.stream('namespaceRemove', input));
  }
}
