import { Flags } from '@oclif/core';
import type { PsView } from '@ployz/protocol';
import { DaemonCommand } from '../daemon-command.ts';
import { psLines } from '../ops-output.ts';

export default class Ps extends DaemonCommand {
  static override description =
    "List each service's instances on every machine: machine, state, READY (yes, or no and the routable reason traffic skips it for: not_ready, draining, revision_mismatch…), revision, deploy, age and named ports. An instance marked * is not in the committed release (a candidate or a leftover).";
  static override examples = [
    '<%= config.bin %> ps',
    '<%= config.bin %> ps -n shop',
    '<%= config.bin %> ps -n shop --json   # {at, services: [{namespace, service, revision, deploy, instances: [...]}]}',
  ];
  static override flags = {
    namespace: Flags.string({ char: 'n', description: 'only this namespace' }),
  };

  async run(): Promise<PsView> {
    const { flags } = await this.parse(Ps);
    const view = await this.client(flags).call('ps', flags.namespace ? { namespace: flags.namespace } : {});
    if (!this.jsonEnabled()) for (const line of psLines(view)) this.log(line);
    return view;
  }
}
