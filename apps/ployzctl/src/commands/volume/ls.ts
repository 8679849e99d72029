import { Flags } from '@oclif/core';
import type { VolumeRecord } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { VOLUME_HEADER, volumeRow } from '../../volume-output.ts';

export default class VolumeLs extends DaemonCommand {
  static override description =
    'List volumes as committed deploys know them: namespace/name, machine, driver, quota, snapshots kept and the deploy of the newest.';
  static override examples = ['<%= config.bin %> volume ls', '<%= config.bin %> volume ls -n shop --json'];
  static override flags = {
    namespace: Flags.string({ char: 'n', description: 'only this namespace' }),
  };

  async run(): Promise<VolumeRecord[]> {
    const { flags } = await this.parse(VolumeLs);
    const { volumes } = await this.client(flags).call(
      'volumeList',
      flags.namespace ? { namespace: flags.namespace } : {},
    );
    if (!this.jsonEnabled()) {
      this.log(VOLUME_HEADER);
      for (const v of volumes) this.log(volumeRow(v));
    }
    return volumes;
  }
}
