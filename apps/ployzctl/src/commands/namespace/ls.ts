import type { NamespaceView } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';
import { namespaceLines } from '../../ops-output.ts';

export default class NamespaceLs extends DaemonCommand {
  static override description =
    'List namespaces with a committed deploy: their services, instances (routable/all), hostnames and last deploy. A removed namespace is not listed; its history stays in ployzctl deploy ls -n <ns>.';
  static override examples = ['<%= config.bin %> namespace ls', '<%= config.bin %> namespace ls --json'];

  async run(): Promise<NamespaceView[]> {
    const { flags } = await this.parse(NamespaceLs);
    const { namespaces } = await this.client(flags).call('namespaceList', {});
    if (!this.jsonEnabled()) for (const line of namespaceLines(namespaces, new Date())) this.log(line);
    return namespaces;
  }
}
