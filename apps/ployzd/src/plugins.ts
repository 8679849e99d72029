/**
 * The daemon's plugins, in start order. The deploy engine (src/deploy/) registers its RPC
 * commands and local API routes, and recovers interrupted deploys at start; the events plugin
 * serves the `events` route from the routing event stream.
 */
import type { DaemonPlugin } from './daemon.ts';
import { deployPlugin } from './deploy/index.ts';
import { eventsPlugin } from './events-route.ts';

export function daemonPlugins(): DaemonPlugin[] {
  return [deployPlugin(), eventsPlugin()];
}
