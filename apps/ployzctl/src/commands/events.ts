import { Flags } from '@oclif/core';
import { DaemonCommand } from '../daemon-command.ts';
import { eventRow } from '../event-output.ts';

export default class Events extends DaemonCommand {
  static override description =
    'Print the routing events (ordered facts the gateway and DNS follow): seq, time, type, namespace/service/instance, deploy. Ends when caught up, or follows new events with --follow.';
  static override examples = [
    '<%= config.bin %> events',
    '<%= config.bin %> events --from-seq 120 --follow',
    '<%= config.bin %> events --namespace shop --json   # NDJSON: one event per line',
  ];
  // --json prints NDJSON as events arrive, not one document at the end.
  static override ndjson = true;
  static override flags = {
    'from-seq': Flags.integer({
      description: 'first event sequence to print (default: the oldest kept)',
      min: 1,
    }),
    follow: Flags.boolean({
      char: 'f',
      description: 'keep printing new events until interrupted',
      default: false,
    }),
    namespace: Flags.string({ char: 'n', description: 'only events of this namespace' }),
    json: Flags.boolean({ description: 'one JSON event per line (NDJSON)', default: false }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Events);
    const input = {
      follow: flags.follow ? 'true' : 'false',
      ...(flags['from-seq'] !== undefined ? { from_seq: flags['from-seq'] } : {}),
      ...(flags.namespace !== undefined ? { namespace: flags.namespace } : {}),
    };
    const out = (line: string) => process.stdout.write(`${line}\n`);
    for await (const item of this.client(flags).stream('events', input)) {
      if (item.kind === 'progress') out(flags.json ? JSON.stringify(item.progress) : eventRow(item.progress));
    }
  }
}
