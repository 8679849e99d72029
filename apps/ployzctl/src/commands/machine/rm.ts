import { Args, Flags } from '@oclif/core';
import type { MachineRemoveResult } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineRm extends DaemonCommand {
  static override description =
    'Remove a machine from the installation: every member drops its WireGuard peer and no gateway routes to it. Refused (MACHINE_IN_USE) while a committed release has slots on it or volumes live on it — drain it and deploy first — unless --force, which says what it abandons.';
  static override examples = [
    '<%= config.bin %> machine rm m3',
    '<%= config.bin %> machine rm m3 --force   # a lost machine: abandons its slots and volumes',
  ];
  static override args = {
    machine: Args.string({ description: 'machine id (see machine ls)', required: true }),
  };
  static override flags = {
    force: Flags.boolean({
      description: 'remove it even though it runs slots or holds volumes (listed)',
      default: false,
    }),
  };

  async run(): Promise<MachineRemoveResult> {
    const { args, flags } = await this.parse(MachineRm);
    const result = await this.client(flags).call('machineRemove', {
      machine: args.machine,
      force: flags.force,
    });
    if (!this.jsonEnabled()) {
      this.log(
        result.changed ? `${args.machine} removed` : `${args.machine} was already removed; nothing changed`,
      );
      const { slots, volumes } = result.abandoned;
      if (slots.length + volumes.length > 0) {
        process.stderr.write(
          `abandoned (--force): ${[...slots.map((s) => `slot ${s}`), ...volumes.map((v) => `volume ${v}`)].join(', ')}\n`,
        );
      }
    }
    return result;
  }
}
