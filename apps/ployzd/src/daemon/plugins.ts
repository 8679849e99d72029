/**
 * The daemon's plugins, in start order. The deploy engine (src/deploy/) registers its RPC
 * commands and local API routes, and recovers interrupted deploys at start; the events plugin
 * serves the `events` route from the routing event stream; the facts loop checks this machine's
 * instance records against the engine (workloads/facts-loop.ts); the ops plugin serves `ps`,
 * `logs` and `exec` (ops/); the images plugin receives images other machines send and serves
 * `image push` (images/); the acme plugin runs the certificate renewer and feeds this machine's
 * gateway, and serves `cert ls|show` (acme/).
 */

import { acmePlugin } from '../acme/plugin.ts';
import { deployPlugin } from '../deploy/plugin.ts';
import { eventsPlugin } from '../events/route.ts';
import { imagesPlugin } from '../images/plugin.ts';
import { opsPlugin } from '../ops/plugin.ts';
import { storePromotePlugin } from '../store-promote/plugin.ts';
import { factsPlugin } from '../workloads/facts-loop.ts';
import type { DaemonPlugin } from './daemon.ts';

export function daemonPlugins(): DaemonPlugin[] {
  return [
    deployPlugin(),
    eventsPlugin(),
    factsPlugin(),
    opsPlugin(),
    imagesPlugin(),
    acmePlugin(),
    storePromotePlugin(),
  ];
}
