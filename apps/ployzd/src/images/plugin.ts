/**
 * Images as a daemon plugin: the receiving side's machine commands (`image_has`,
 * `image_receive_open|chunk|close|abort`, @ployz/protocol's `imageCommands`) into this machine's
 * dockerd, and the local API's `imagePush` route (`ployzctl image push`) — images without a
 * registry; and for images that name their registry, the pulling side (`image_pull`,
 * `image_pull_check`, puller.ts) with the installation's registry credentials, which the
 * `registryLogin|List|Logout` routes keep (registry-auth.ts). The deploy engine sends or has
 * pulled what its candidates lack through its own ImageSender (deploy/plugin.ts).
 */
import type { InstallationKey } from '@ployz/identity';
import { type ImageCommands, imageCommands, RpcClient } from '@ployz/protocol';
import type { Store } from '@ployz/store';
import { PloyzError } from '@ployz/types';
import type { DaemonContext, DaemonPlugin } from '../daemon/daemon.ts';
import { loadInstallationKey } from '../deploy/plugin.ts';
import type { MachineIdentity } from '../machine/identity.ts';
import { onlyThisMachine } from '../workloads/rpc-handlers.ts';
import { DockerImages } from './docker-images.ts';
import { ImagePuller } from './puller.ts';
import { pushImage } from './push.ts';
import { ImageReceiver } from './receiver.ts';
import { authFor, openRegistryCredentials, type RegistryCredentials } from './registry-auth.ts';
import { registryRoutes } from './registry-routes.ts';
import { ImageSender } from './sender.ts';

/** An ImageSender over this daemon's NATS link and engine (the push route's and the deploy engine's). */
export function imageSenderOf(ctx: DaemonContext, identity: MachineIdentity): ImageSender {
  const nc = ctx.nats()?.connection;
  if (!nc) throw new PloyzError('STORE_UNAVAILABLE', 'NATS is not connected');
  const client: RpcClient<ImageCommands> = new RpcClient({
    nc,
    scope: { installation: identity.installation, authority: identity.authority },
    commands: imageCommands,
    caller: identity.machine_id,
  });
  return new ImageSender({ client, images: new DockerImages(() => ctx.docker.docker) });
}

export function imagesPlugin(): DaemonPlugin {
  let sender: ImageSender | null = null;
  let store: Store | null = null;
  let self: string | null = null;
  let receiver: ImageReceiver | null = null;
  let puller: ImagePuller | null = null;
  let credentials: RegistryCredentials | null = null;
  let key: InstallationKey | null = null;
  const notReady = () =>
    new PloyzError(
      'ENGINE_NOT_READY',
      'ployzd is not connected to its store yet (machine not initialised or NATS not connected); see ployzctl status',
    );
  const readyPuller = (): ImagePuller => {
    if (puller === null) throw notReady();
    return puller;
  };

  return {
    name: 'images',
    register(ctx: DaemonContext) {
      const log = ctx.logger.child({ plugin: 'images' });
      const images = new DockerImages(() => ctx.docker.docker);
      const r = new ImageReceiver(() => images, { log: (message, fields) => log.info(fields, message) });
      receiver = r;
      ctx.registerCommands(imageCommands, {
        image_has: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return r.has(body);
        },
        image_receive_open: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return r.open(body);
        },
        image_receive_chunk: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return r.chunk(body);
        },
        image_receive_close: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return r.close(body);
        },
        image_receive_abort: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return r.abort(body);
        },
        image_pull: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return readyPuller().pull(body);
        },
        image_pull_check: (body, rpc) => {
          onlyThisMachine(body.machine, rpc);
          return readyPuller().check(body.image);
        },
      });
      registryRoutes(ctx, () => {
        if (credentials === null || key === null || self === null) throw notReady();
        return { credentials, key, machine: self };
      });
      ctx.implement('imagePush', (request, { emit }) => {
        if (sender === null || store === null || self === null) {
          throw new PloyzError(
            'ENGINE_NOT_READY',
            'ployzd is not connected to its store yet (machine not initialised or NATS not connected); see ployzctl status',
          );
        }
        const machines = store.machines;
        return pushImage(
          { self, sender, emit, machines: async () => (await machines.list()).map((v) => v.value) },
          request,
        );
      });
    },

    async start(ctx: DaemonContext, identity: MachineIdentity) {
      sender = imageSenderOf(ctx, identity);
      store = ctx.store();
      self = identity.machine_id;
      const k = await loadInstallationKey(ctx.config.stateDir);
      const creds = await openRegistryCredentials(store);
      key = k;
      credentials = creds;
      puller = new ImagePuller({
        docker: () => ctx.docker.docker,
        machine: identity.machine_id,
        auth: (host) => authFor(creds, k, host),
      });
    },

    async stop() {
      receiver?.abortAll('ployzd is stopping');
      sender = null;
      store = null;
      self = null;
      puller = null;
      credentials = null;
      key = null;
    },
  };
}
