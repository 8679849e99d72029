/**
 * The daemon's plugins, in start order. The deploy engine (src/deploy/) registers its RPC
 * commands and local API routes, and recovers interrupted deploys at start.
 */
import type { DaemonPlugin } from './daemon.ts';
import { deployPlugin } from './deploy/index.ts';

export function daemonPlugins(): DaemonPlugin[] {
  return [deployPlugin()];
}
