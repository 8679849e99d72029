/**
 * Base of every ployzctl command that talks to ployzd: the `--socket` flag, `--json`, and errors
 * printed as `CODE: message` (or `{ "error": { code, message } }` with --json), never a stack trace.
 */
import { Command, Flags, type Interfaces } from '@oclif/core';
import { isPloyzError } from '@ployz/types';
import { DaemonClient, DEFAULT_SOCKET } from './daemon-client.ts';

export abstract class DaemonCommand extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    socket: Flags.string({
      description: 'path of the ployzd local API socket',
      env: 'PLOYZ_SOCKET_PATH',
      default: DEFAULT_SOCKET,
      helpGroup: 'GLOBAL',
    }),
  };

  protected client(flags: { socket: string }): DaemonClient {
    return new DaemonClient(flags.socket);
  }

  protected override async catch(err: Interfaces.CommandError): Promise<unknown> {
    if (isPloyzError(err)) {
      if (this.jsonEnabled()) {
        this.logJson({ error: err.toJSON() });
      } else {
        process.stderr.write(`${err.code}: ${err.message}\n`);
      }
      this.exit(err.kind === 'user' || err.kind === 'conflict' ? 2 : 1);
    }
    return super.catch(err);
  }
}
