/**
 * The ImageAgent port over images/'s ImageSender: `docker save` on this machine streamed to the
 * participant's `image_receive_*` commands (machine-command RPC over NATS); for an image from a
 * registry, the participant's `image_pull` / `image_pull_check`.
 */
import type { ImageSender } from '../../images/sender.ts';
import type { ImageAgent } from '../ports.ts';

export function rpcImageAgent(sender: ImageSender): ImageAgent {
  return {
    local: (image) => sender.local(image),
    has: async (machine, image, imageId) => (await sender.has(machine, image, imageId)).present,
    send: async (machine, image, local, emit, signal) => {
      await sender.send(machine, image, local, emit, signal);
    },
    pull: async (machine, image, always, emit, signal) => {
      await sender.pull(machine, image, always, emit, signal);
    },
    pullCheck: async (machine, image) => {
      const r = await sender.pullCheck(machine, image);
      return { available: r.available, detail: r.detail };
    },
  };
}
