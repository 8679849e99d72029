import { Args } from '@oclif/core';
import type { RegistryLogoutResult } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';

export default class RegistryLogout extends DaemonCommand {
  static override description =
    "Remove a registry's credentials from the installation; its images are then pulled anonymously.";
  static override examples = ['<%= config.bin %> registry logout registry.example.com'];
  static override args = {
    host: Args.string({ description: 'the registry host, as registry ls shows it', required: true }),
  };

  async run(): Promise<RegistryLogoutResult> {
    const { args, flags } = await this.parse(RegistryLogout);
    const result = await this.client(flags).call('registryLogout', { host: args.host });
    if (!this.jsonEnabled())
      this.log(
        result.removed
          ? `Removed the credentials for ${result.host}.`
          : `No credentials for ${result.host}; nothing removed (see ployzctl registry ls).`,
      );
    return result;
  }
}
