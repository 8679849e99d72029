/**
 * How the mesh runs its few commands (`wg`, `ip`): inside the networking container through
 * `docker exec`, or in the daemon's own network namespace (the host) as a child process. Both
 * answer the same shape, so wireguard.ts and routes.ts never know where they run; tests give the
 * host runner of a netns host.
 */
import { execFile } from 'node:child_process';
import { PloyzError } from '@ployz/types';
import type Docker from 'dockerode';
import { dockerError } from '../runtime/docker-errors.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` (program first) to completion; never throws on a non-zero exit code. */
export type CommandRunner = (argv: string[]) => Promise<CommandResult>;

/** Like the runner, but a non-zero exit becomes an INTERNAL error naming the command and its stderr. */
export async function mustRun(run: CommandRunner, argv: string[], where: string): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) {
    throw new PloyzError(
      'INTERNAL',
      `${argv.join(' ')} failed in ${where} (exit ${r.code}): ${r.stderr.trim()}`,
      {
        details: { command: argv.join(' '), where },
      },
    );
  }
  return r.stdout;
}

/** Splits Docker's multiplexed exec stream (8-byte headers: 1 = stdout, 2 = stderr, big-endian size). */
function demux(raw: Buffer): { stdout: string; stderr: string } {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= raw.length) {
    const kind = raw[offset];
    const size = raw.readUInt32BE(offset + 4);
    const frame = raw.subarray(offset + 8, offset + 8 + size);
    (kind === 2 ? err : out).push(frame);
    offset += 8 + size;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/** `docker exec <container> argv…` (no TTY), waiting for the command's end. */
export function dockerExecRunner(docker: Docker, container: string): CommandRunner {
  return async (argv) => {
    try {
      const exec = await docker
        .getContainer(container)
        .exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({ hijack: true, stdin: false });
      const chunks: Buffer[] = [];
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
      const info = await exec.inspect();
      return { code: info.ExitCode ?? -1, ...demux(Buffer.concat(chunks)) };
    } catch (error) {
      throw dockerError(error, `cannot exec ${argv[0] ?? ''} in ${container}`);
    }
  };
}

/** Runs in the daemon's own network namespace (ployzd runs as root on the host). */
export const hostRunner: CommandRunner = (argv) =>
  new Promise((resolve) => {
    const [program = '', ...args] = argv;
    execFile(program, args, { encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 127;
      resolve({ code, stdout, stderr: stderr || (error?.message ?? '') });
    });
  });
