import { Flags } from '@oclif/core';
import type { MachineInviteResult } from '@ployz/protocol';
import { DaemonCommand, endpointFlag } from '../../daemon-command.ts';

export default class MachineInvite extends DaemonCommand {
  static override description =
    'Print a signed, expiring, single-use token that lets one new machine join this installation (ployzctl machine join <token> on it). The new machine contacts this one at its join listener.';
  static override examples = [
    '<%= config.bin %> machine invite',
    '<%= config.bin %> machine invite --ttl 30m --region eu',
    '<%= config.bin %> machine invite --endpoint 203.0.113.7:51820 --json',
  ];
  static override flags = {
    ttl: Flags.string({
      description: 'how long the token is good for (e.g. 30m, 1h, 24h; at most 168h)',
      default: '1h',
    }),
    region: Flags.string({ description: 'region of the machine that joins with it (default: default)' }),
    endpoint: endpointFlag(
      "WireGuard endpoint ip:port the token names for this machine (repeatable or comma list; default: its record's)",
    ),
  };

  async run(): Promise<MachineInviteResult> {
    const { flags } = await this.parse(MachineInvite);
    const result = await this.client(flags).call('machineInvite', {
      ttl: flags.ttl,
      ...(flags.region !== undefined ? { region: flags.region } : {}),
      ...(flags.endpoint !== undefined ? { endpoints: flags.endpoint } : {}),
    });
    if (!this.jsonEnabled()) {
      this.log(result.token);
      process.stderr.write(
        `single use, expires ${result.expires_at}; on the new machine: ployzctl machine join <token>  (it contacts ${result.join})\n`,
      );
    }
    return result;
  }
}
