import { Flags } from '@oclif/core';
import type { MachineInitResult } from '@ployz/protocol';
import { DaemonCommand, endpointFlag } from '../../daemon-command.ts';
import { machineUpExitCode, machineUpLines } from '../../machine-output.ts';

export default class MachineInit extends DaemonCommand {
  static override description =
    'Create a new single-machine installation here: WireGuard identity, overlay address, workload subnet, and the data plane. On an initialised machine it says so and changes nothing.';
  static override examples = [
    '<%= config.bin %> machine init',
    '<%= config.bin %> machine init --id web-1 --installation prod --region eu',
    '<%= config.bin %> machine init --storage zfs:tank',
    '<%= config.bin %> machine init --endpoint 203.0.113.7:51820',
    '<%= config.bin %> machine init --registry registry.example.com:5000',
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
    endpoint: endpointFlag(),
    registry: Flags.string({
      description:
        'registry (host[:port]) to pull the data-plane images from, as <registry>/ployz/<component>:<version>; recorded on the machine (PLOYZ_IMAGE_REGISTRY on ployzd overrides it). Default: the images built here',
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
      ...(flags.endpoint !== undefined ? { endpoints: flags.endpoint } : {}),
      ...(flags.registry !== undefined ? { registry: flags.registry } : {}),
    });
    if (!this.jsonEnabled()) {
      this.log(`machine ${result.machine.machine_id} in installation ${result.machine.installation}`);
      for (const line of machineUpLines(result)) this.log(line);
    }
    process.exitCode = machineUpExitCode(result) ?? process.exitCode;
    return result;
  }
}
