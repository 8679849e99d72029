import { Args, Flags } from '@oclif/core';
import { DaemonCommand } from '../daemon-command.ts';
import { logEntryLine, parseSince, parseTarget } from '../ops-output.ts';

export default class Logs extends DaemonCommand {
  static override description =
    "Print a service's logs from every instance on every machine, merged by time, each line prefixed with <instance>@<machine> (stderr lines marked !). Instances on other machines are read over their ployzd's RPC; a machine that does not answer is named (MACHINE_UNREACHABLE) and the others' lines still print. With --follow it keeps going across deploys: a new instance joins the stream, a removed one leaves it.";
  static override examples = [
    '<%= config.bin %> logs shop/web',
    '<%= config.bin %> logs shop/web --since 10m --tail 100',
    '<%= config.bin %> logs shop/web --follow',
    '<%= config.bin %> logs shop/web --instance shop-web-0-ab12cd --timestamps',
    '<%= config.bin %> logs shop/web --json   # NDJSON: {type: line|instance|unreachable, ...}',
  ];
  static override ndjson = true;
  static override args = {
    target: Args.string({ description: '<namespace>/<service>', required: true }),
  };
  static override flags = {
    instance: Flags.string({ char: 'i', description: 'only this instance (ids from ployzctl ps)' }),
    follow: Flags.boolean({
      char: 'f',
      description: 'keep printing new lines until interrupted',
      default: false,
    }),
    since: Flags.string({
      description: 'only lines newer than a duration (30s, 10m, 2h, 1d) or an RFC 3339 time',
    }),
    tail: Flags.integer({ description: 'only the last N lines of each instance', min: 0, max: 100_000 }),
    timestamps: Flags.boolean({ char: 't', description: 'print each line’s time', default: false }),
    json: Flags.boolean({ description: 'one JSON entry per line (NDJSON)', default: false }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Logs);
    const { namespace, service } = parseTarget(args.target);
    const input = {
      namespace,
      service,
      follow: flags.follow ? 'true' : 'false',
      ...(flags.instance !== undefined ? { instance: flags.instance } : {}),
      ...(flags.since !== undefined ? { since: parseSince(flags.since, new Date()) } : {}),
      ...(flags.tail !== undefined ? { tail: flags.tail } : {}),
    };
    const ac = new AbortController();
    process.once('SIGINT', () => ac.abort());
    const out = (line: string) => process.stdout.write(`${line}\n`);
    for await (const item of this.client(flags).stream('logs', input, { signal: ac.signal })) {
      if (item.kind === 'progress') {
        const entry = item.progress;
        if (flags.json) out(JSON.stringify(entry));
        else if (entry.type === 'line') out(logEntryLine(entry, flags.timestamps));
        else process.stderr.write(`${logEntryLine(entry, flags.timestamps)}\n`);
      } else if (flags.json) out(JSON.stringify({ type: 'done', ...item.result }));
    }
  }
}
