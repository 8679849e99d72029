import { Flags } from '@oclif/core';
import type { DeployStatusRecord } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { STATUS_HEADER, statusRow } from '../../deploy-output.ts';

export default class DeployLs extends DaemonCommand {
  static override description =
    'List deploys, oldest first: id, namespace, state, step reached, start time, rollback/error note.';
  static override examples = [
    '<%= config.bin %> deploy ls',
    '<%= config.bin %> deploy ls --namespace demo --json',
  ];
  static override flags = {
    namespace: Flags.string({ char: 'n', description: 'only this namespace' }),
  };

  async run(): Promise<DeployStatusRecord[]> {
    const { flags } = await this.parse(DeployLs);
    const list = await this.client(flags).call(
      'deployList',
      flags.namespace ? { namespace: flags.namespace } : {},
    );
    if (!this.jsonEnabled()) {
      this.log(STATUS_HEADER);
      for (const s of list) this.log(statusRow(s));
    }
    return list;
  }
}
