import type { RegistryView } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';
import { REGISTRY_HEADER, registryRow } from '../../registry-output.ts';

export default class RegistryLs extends DaemonCommand {
  static override description =
    'List the registries the installation holds credentials for: host, username, when and by which machine they were stored (never the password).';
  static override examples = ['<%= config.bin %> registry ls', '<%= config.bin %> registry ls --json'];

  async run(): Promise<RegistryView[]> {
    const { flags } = await this.parse(RegistryLs);
    const { registries } = await this.client(flags).call('registryList', {});
    if (!this.jsonEnabled()) {
      if (registries.length === 0) this.log('No registry credentials; images are pulled anonymously.');
      else {
        this.log(REGISTRY_HEADER);
        for (const r of registries) this.log(registryRow(r));
      }
    }
    return registries;
  }
}
