import { Args, Flags } from '@oclif/core';
import { ExecExit, encodeFrame, encodeFrames, FRAME, FrameReader, WireErrorBody } from '@ployz/protocol';
import { PloyzError } from '@ployz/types';
import { DaemonCommand } from '../daemon-command.ts';
import { parseTarget } from '../ops-output.ts';

export default class Exec extends DaemonCommand {
  static override description =
    "Run a command in one instance of a service, on whatever machine it is (the first ready instance of the committed release unless --instance names one): stdout and stderr come back as they are written, stdin goes in with -i, -t gives it a terminal, and ployzctl exits with the command's exit code.";
  static override examples = [
    '<%= config.bin %> exec shop/web -- ls /srv',
    '<%= config.bin %> exec shop/web -it -- sh',
    '<%= config.bin %> exec shop/db --instance shop-db-0-ab12cd -i -- psql < dump.sql',
  ];
  static override strict = false;
  static override enableJsonFlag = false;
  static override args = {
    target: Args.string({ description: '<namespace>/<service>', required: true }),
  };
  static override flags = {
    instance: Flags.string({ description: 'run in this instance (ids from ployzctl ps)' }),
    interactive: Flags.boolean({ char: 'i', description: 'pass stdin to the command', default: false }),
    tty: Flags.boolean({
      char: 't',
      description: 'give the command a terminal (with -i: an interactive shell)',
      default: false,
    }),
  };

  async run(): Promise<void> {
    const { args, argv, flags } = await this.parse(Exec);
    const { namespace, service } = parseTarget(args.target);
    const command = (argv as string[]).slice(1);
    if (command.length === 0)
      throw new PloyzError(
        'INVALID_ARGUMENT',
        'name the command after --, e.g. ployzctl exec shop/web -- ls',
      );
    const tty = flags.tty && process.stdout.isTTY === true;
    // A terminal that reports no size (0 × 0, e.g. under `script`) gets the classic 80 × 24.
    const size = tty ? { cols: process.stdout.columns || 80, rows: process.stdout.rows || 24 } : null;
    const socket = await this.client(flags).tunnel('exec', {
      namespace,
      service,
      ...(flags.instance !== undefined ? { instance: flags.instance } : {}),
      command,
      tty,
      stdin: flags.interactive,
      size,
    });
    const stdin = process.stdin;
    const raw = tty && flags.interactive && stdin.isTTY === true;
    if (raw) stdin.setRawMode(true);
    const onResize = () =>
      socket.write(
        encodeFrame(
          FRAME.resize,
          JSON.stringify({ cols: process.stdout.columns, rows: process.stdout.rows }),
        ),
      );
    if (tty) process.stdout.on('resize', onResize);
    if (flags.interactive) {
      stdin.on('data', (chunk: Buffer) => {
        for (const frame of encodeFrames(FRAME.stdin, chunk)) socket.write(frame);
      });
      stdin.once('end', () => socket.write(encodeFrame(FRAME.eof)));
    }
    const reader = new FrameReader();
    try {
      const code = await new Promise<number>((resolve, reject) => {
        socket.on('data', (chunk: Buffer) => {
          for (const frame of reader.push(chunk)) {
            if (frame.kind === FRAME.stdout) process.stdout.write(frame.payload);
            else if (frame.kind === FRAME.stderr) process.stderr.write(frame.payload);
            else if (frame.kind === FRAME.exit)
              resolve(ExecExit.parse(JSON.parse(frame.payload.toString('utf8'))).exit_code);
            else if (frame.kind === FRAME.error) {
              const body = WireErrorBody.parse(JSON.parse(frame.payload.toString('utf8')));
              reject(PloyzError.fromBody(body as Parameters<typeof PloyzError.fromBody>[0]));
            }
          }
        });
        socket.once('error', (err) => reject(err));
        socket.once('close', () =>
          reject(
            new PloyzError(
              'DAEMON_UNREACHABLE',
              'ployzd closed the exec before its exit code; check its logs',
            ),
          ),
        );
      });
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
      this.exit(code);
    } finally {
      if (raw) stdin.setRawMode(false);
      if (tty) process.stdout.off('resize', onResize);
      stdin.pause();
      socket.destroy();
    }
  }
}
