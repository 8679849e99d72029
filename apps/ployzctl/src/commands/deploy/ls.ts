import { Flags } from '@oclif/core';
import type { DeployStatusRecord } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { STATUS_HEADER, statusRow } from '../../deploy-output.ts';

export default class DeployLs extends DaemonCommand {
  static override description =
    'List deploys, newest first, one page at a time: id, namespace, state, step reached, start time, rollback/error note. `--before <last id>` shows the next (older) page.';
  static override examples = [
    '<%= config.bin %> deploy ls',
    '<%= config.bin %> deploy ls --limit 50 --before d-20260101-abc',
    '<%= config.bin %> deploy ls --namespace demo --json',
  ];
  static override flags = {
    namespace: Flags.string({ char: 'n', description: 'only this namespace' }),
    limit: Flags.integer({ description: 'deploys per page, newest first', default: 20, min: 1, max: 10_000 }),
    before: Flags.string({
      description: 'only deploys older than this deploy id (the last id of the previous page)',
    }),
  };

  async run(): Promise<DeployStatusRecord[]> {
    const { flags } = await this.parse(DeployLs);
    const page = await this.client(flags).call('deployList', {
      limit: flags.limit,
      ...(flags.namespace ? { namespace: flags.namespace } : {}),
      ...(flags.before ? { before: flags.before } : {}),
    });
    if (!this.jsonEnabled()) {
      this.log(STATUS_HEADER);
      for (const s of page) this.log(statusRow(s));
      const last = page.at(-1);
      if (page.length === flags.limit && last !== undefined) {
        const ns = flags.namespace ? ` --namespace ${flags.namespace}` : '';
        this.log(`next page: ployzctl deploy ls${ns} --limit ${flags.limit} --before ${last.deploy_id}`);
      }
    }
    return page;
  }
}
