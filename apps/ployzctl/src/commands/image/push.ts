import { Args, Flags } from '@oclif/core';
import type { ImagePushResult } from '@ployz/protocol';
import { DaemonCommand } from '../../daemon-command.ts';
import { imageEventLine, imagePushLines } from '../../deploy-output.ts';

export default class ImagePush extends DaemonCommand {
  static override description =
    "Send an image from this machine's engine to another machine over the mesh (docker save here → docker load there, no registry): to the one named, or to every eligible machine that lacks it. A machine that holds the image already (by id) gets nothing. Deploys do this by themselves for the machines they start candidates on.";
  static override examples = [
    '<%= config.bin %> image push ployz/hello:latest                # every eligible machine lacking it',
    '<%= config.bin %> image push ployz/hello:latest --machine m2',
    '<%= config.bin %> image push ployz/hello:latest --json',
  ];
  static override args = {
    image: Args.string({
      description: 'image name (name[:tag]) as this machine’s engine knows it',
      required: true,
    }),
  };
  static override flags = {
    machine: Flags.string({
      char: 'm',
      description: 'only this machine (default: every eligible machine lacking it)',
    }),
  };

  async run(): Promise<ImagePushResult> {
    const { args, flags } = await this.parse(ImagePush);
    const json = this.jsonEnabled();
    const input = { image: args.image, machine: flags.machine ?? null };
    let result: ImagePushResult | null = null;
    for await (const item of this.client(flags).stream('imagePush', input)) {
      if (item.kind === 'progress') {
        if (!json) this.log(imageEventLine(item.progress).trimStart());
      } else result = item.result;
    }
    if (result === null) throw new Error('the daemon ended the push without a result');
    if (!json) for (const line of imagePushLines(result)) this.log(line);
    return result;
  }
}
