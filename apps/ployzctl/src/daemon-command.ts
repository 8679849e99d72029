/**
 * Base of every ployzctl command that talks to ployzd: the `--socket` flag, `--json`, a typed
 * @ployz/protocol `LocalApiClient` (closed when the command ends), and errors printed as
 * `CODE: message` (or `{ "error": { code, message } }` with --json), never a stack trace.
 */
import { Command, Flags, type Interfaces } from '@oclif/core';
import { DEFAULT_SOCKET, LocalApiClient } from '@ployz/protocol';
import { isPloyzError } from '@ployz/types';

/** `--socket` (or PLOYZ_SOCKET_PATH): where ployzd's local API listens. */
export const socketFlag = Flags.string({
  description: 'path of the ployzd local API socket',
  env: 'PLOYZ_SOCKET_PATH',
  default: DEFAULT_SOCKET,
  helpGroup: 'GLOBAL',
});

export abstract class DaemonCommand extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = { socket: socketFlag };

  #clients: LocalApiClient[] = [];

  protected client(flags: { socket: string }): LocalApiClient {
    const client = new LocalApiClient({ socketPath: flags.socket });
    this.#clients.push(client);
    return client;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    await Promise.allSettled(this.#clients.splice(0).map((c) => c.close()));
    return super.finally(err);
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
