/**
 * Base of every ployzctl command: the `--socket` flag, `--json`, a typed @ployz/protocol
 * `LocalApiClient` (closed when the command ends), and the one `catch` of the CLI. Whatever a
 * command throws (a `PloyzError`, oclif's own flag and argument errors, a bug) prints as
 * `CODE: message` on stderr, or as JSON with --json, never with a stack trace for a user mistake,
 * and ends the process with the code's exit status from @ployz/types (docs/errors.md).
 */
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { DEFAULT_SOCKET, LocalApiClient } from '@ployz/protocol';
import { exitStatus, isPloyzError, PloyzError } from '@ployz/types';
import { errorLines } from './error-output.ts';

/** `--socket` (or PLOYZ_SOCKET_PATH): where ployzd's local API listens. */
export const socketFlag = Flags.string({
  description: 'path of the ployzd local API socket',
  env: 'PLOYZ_SOCKET_PATH',
  default: DEFAULT_SOCKET,
  helpGroup: 'GLOBAL',
});

/** `--endpoint ip:port` (repeatable, or a comma list): WireGuard endpoints; ployzd validates them. */
export function endpointFlag(
  description = 'WireGuard endpoint ip:port other machines reach this one at (repeatable or comma list; default: <first non-loopback IPv4>:<WireGuard port>)',
) {
  return Flags.string({ description, multiple: true });
}

/**
 * What a command threw, as the error the user sees: oclif's parse errors (missing or unknown flag,
 * bad value) are `INVALID_ARGUMENT`; anything that is not a Ployz error is a bug, `INTERNAL`.
 */
export function commandError(err: unknown): PloyzError {
  if (isPloyzError(err)) return err;
  if (err instanceof Errors.CLIError) {
    // oclif's messages span lines ("Parsing --limit\n\tExpected an integer…\nSee more help with --help").
    const lines = err.message
      .split('\n')
      .map((line) => line.trim().replace(/\s+/g, ' '))
      .filter((line) => line !== '' && line !== 'The following error occurred:');
    const message = lines.reduce(
      (out, line) => (out === '' ? line : `${out}${out.endsWith(':') ? ' ' : '; '}${line}`),
      '',
    );
    return new PloyzError('INVALID_ARGUMENT', message, { cause: err });
  }
  return new PloyzError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

export abstract class DaemonCommand extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = { socket: socketFlag };
  /**
   * The command's --json prints NDJSON as work goes (one JSON value per line): an error is then
   * its last line, `{"type":"error","error":{…}}`, instead of one `{"error":{…}}` document.
   */
  static ndjson = false;

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
    // `this.exit(n)` is an exit status the command chose (deploy preview's 3 = changes pending).
    if (err instanceof Errors.ExitError) throw err;
    const error = commandError(err);
    if (this.jsonEnabled()) {
      if ((this.constructor as typeof DaemonCommand).ndjson)
        process.stdout.write(`${JSON.stringify({ type: 'error', error: error.toJSON() })}\n`);
      else this.logJson({ error: error.toJSON() });
    } else {
      for (const line of errorLines(error)) process.stderr.write(`${line}\n`);
      // A bug's stack is for its report, shown on demand (oclif's DEBUG convention).
      if (error.code === 'INTERNAL' && process.env.DEBUG && error.cause instanceof Error)
        process.stderr.write(`${error.cause.stack ?? ''}\n`);
    }
    return this.exit(exitStatus(error.code));
  }
}
