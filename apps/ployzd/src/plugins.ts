/**
 * The daemon's plugins, in start order. The deploy engine (src/deploy/) adds its plugin here:
 *   import { deployPlugin } from './deploy/index.ts';  …  [deployPlugin()]
 */
import type { DaemonPlugin } from './daemon.ts';

export function daemonPlugins(): DaemonPlugin[] {
  return [];
}
