import { Args } from '@oclif/core';
import type { VolumeShowView } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { DaemonCommand } from '../../daemon-command.ts';
import { volumeDetailLines } from '../../volume-output.ts';

export default class VolumeShow extends DaemonCommand {
  static override description =
    'Show one volume: driver, dataset, quota and what is used, owner and mode, and its snapshots with the deploy that took each and their age (what `deploy rollback` can restore). The machine holding it is asked live; the snapshots come from committed facts.';
  static override examples = [
    '<%= config.bin %> volume show shop/pgdata',
    '<%= config.bin %> volume show shop/data-0 --json',
  ];
  static override args = {
    volume: Args.string({
      description: '<namespace>/<volume> (a per-slot volume: <volume>-<slot>)',
      required: true,
    }),
  };

  async run(): Promise<VolumeShowView> {
    const { args, flags } = await this.parse(VolumeShow);
    const [namespace, name, ...rest] = args.volume.split('/');
    if (!namespace || !name || rest.length > 0) {
      throw new PloyzError(
        'INVALID_ARGUMENT',
        `name the volume as <namespace>/<volume>, e.g. shop/pgdata (got ${args.volume})`,
        { details: { volume: args.volume } },
      );
    }
    const view = await this.client(flags).call('volumeShow', { namespace, name });
    if (!this.jsonEnabled()) for (const line of volumeDetailLines(view, new Date())) this.log(line);
    return view;
  }
}
