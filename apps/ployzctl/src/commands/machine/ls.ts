import type { MachineRecord } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineLs extends DaemonCommand {
  static override description = 'List the machines of this installation (from the store).';
  static override examples = ['<%= config.bin %> machine ls', '<%= config.bin %> machine ls --json'];

  async run(): Promise<{ machines: MachineRecord[] }> {
    const { flags } = await this.parse(MachineLs);
    const machines = await this.client(flags).call('machineList', {});
    if (!this.jsonEnabled()) {
      this.log(
        [
          'ID'.padEnd(20),
          'REGION'.padEnd(10),
          'ROLE'.padEnd(10),
          'LIFECYCLE'.padEnd(10),
          'SUBNET'.padEnd(18),
          'OVERLAY',
        ].join(' '),
      );
      for (const m of machines) {
        this.log(
          [
            m.id.padEnd(20),
            m.region.padEnd(10),
            m.region_role.padEnd(10),
            m.lifecycle.padEnd(10),
            m.subnet.padEnd(18),
            m.overlay_ip,
          ].join(' '),
        );
      }
    }
    return { machines };
  }
}
