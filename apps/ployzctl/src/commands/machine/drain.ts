import { Args } from '@oclif/core';
import type { MachineDrainResult } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineDrain extends DaemonCommand {
  static override description =
    'Stop placing new instances on a machine. Its running instances stay until the next deploy of each namespace moves their slots to other machines (an ordinary deploy); then `machine rm` takes it out.';
  static override examples = [
    '<%= config.bin %> machine drain m3',
    '<%= config.bin %> machine drain m3 --json',
  ];
  static override args = {
    machine: Args.string({ description: 'machine id (see machine ls)', required: true }),
  };

  async run(): Promise<MachineDrainResult> {
    const { args, flags } = await this.parse(MachineDrain);
    const result = await this.client(flags).call('machineDrain', { machine: args.machine });
    if (!this.jsonEnabled()) {
      this.log(
        result.changed
          ? `${args.machine} is draining: no new placements; deploy each namespace again to move its slots`
          : `${args.machine} was already draining; nothing changed`,
      );
    }
    return result;
  }
}
