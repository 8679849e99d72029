import { Flags } from '@oclif/core';
import type { MachineInitResult } from '@ployz/protocol';
import { EXIT_STATUS, exitStatus, isErrorCode } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';

export default class MachineInit extends DaemonCommand {
  static override description =
    'Create a new single-machine installation here: WireGuard identity, overlay address, workload subnet, and the data plane. On an initialised machine it says so and changes nothing.';
  static override examples = [
    '<%= config.bin %> machine init',
    '<%= config.bin %> machine init --id web-1 --installation prod --region eu',
    '<%= config.bin %> machine init --storage zfs:tank',
  ];
  static override flags = {
    id: Flags.string({ description: 'machine id (default: the hostname)' }),
    installation: Flags.string({ description: 'installation name', default: 'local' }),
    authority: Flags.string({ description: 'deploy authority', default: 'auth-default' }),
    region: Flags.string({ description: 'region of this machine', default: 'default' }),
    storage: Flags.string({
      description:
        "where volumes live: zfs:<pool>, btrfs:<path> (a mounted btrfs) or dir:<path> (plain directories, no snapshots); probed first, recorded on the machine. Default: the daemon's PLOYZ_STORAGE, else dir:<state dir>/volumes",
    }),
  };

  async run(): Promise<MachineInitResult> {
    const { flags } = await this.parse(MachineInit);
    if (!this.jsonEnabled()) this.log('initialising this machine and starting the data plane…');
    const result = await this.client(flags).call('machineInit', {
      ...(flags.id !== undefined ? { machine_id: flags.id } : {}),
      installation: flags.installation,
      authority: flags.authority,
      region: flags.region,
      ...(flags.storage !== undefined ? { storage: flags.storage } : {}),
    });
    if (!this.jsonEnabled()) {
      const m = result.machine;
      this.log(`machine ${m.machine_id} in installation ${m.installation}`);
      this.log(`  overlay ${m.overlay_ip}  subnet ${m.subnet}`);
      if (typeof m.storage === 'string') this.log(`  storage ${m.storage}`);
      for (const c of result.components)
        this.log(`  ${c.component.padEnd(11)} ${c.state}${c.detail ? `  ${c.detail}` : ''}`);
      if (result.reconcile?.error)
        this.log(`  data plane: ${result.reconcile.error.code}: ${result.reconcile.error.message}`);
    }
    // The machine is initialised either way; a data plane that did not come up is a failure to see.
    const failure = result.reconcile?.error;
    if (failure) process.exitCode = isErrorCode(failure.code) ? exitStatus(failure.code) : EXIT_STATUS.FAILED;
    return result;
  }
}
