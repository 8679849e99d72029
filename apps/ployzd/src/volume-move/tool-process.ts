/**
 * A storage tool whose stdin or stdout is a long stream (`zfs send`, `zfs recv`, `btrfs send`,
 * `btrfs receive`), which exec.ts's buffered runner cannot carry: argument arrays, no shell,
 * LC_ALL=C, and the same error codes (STORAGE_TOOL_MISSING naming the package, STORAGE_FAILED with
 * the command and its stderr). `exited` settles only once the process is gone, so whoever cleans up
 * after a failed pass never races the tool still writing.
 */
import { spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { PloyzError } from '@ployz/types';
import type { Tool } from '../storage/exec.ts';

export interface ToolProcess {
  /** The tool's stdout (when asked for). */
  readonly stdout: Readable;
  /** Resolves when it exits 0; rejects (after it has exited) otherwise. */
  readonly exited: Promise<void>;
  /** SIGTERM, then SIGKILL after a grace period. */
  kill(): void;
}

export interface ToolProcessOptions {
  searchPath?: string | undefined;
  /** Piped to the tool's stdin; an error on it kills the tool and is what `exited` rejects with. */
  stdin?: Readable;
}

const STDERR_MAX = 64 * 1024;
const KILL_GRACE_MS = 5_000;

export function startTool(
  tool: Tool,
  args: readonly string[],
  options: ToolProcessOptions = {},
): ToolProcess {
  const command = [tool.command, ...args].join(' ');
  const child = spawn(tool.command, args, {
    env: { ...process.env, LC_ALL: 'C', PATH: options.searchPath ?? process.env.PATH ?? '' },
    stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    shell: false,
  });
  const { stdout, stderr: errors } = child;
  if (stdout === null || errors === null) throw new Error('spawn gave no stdout/stderr pipes');
  let stderr = '';
  errors.setEncoding('utf8');
  errors.on('data', (text: string) => {
    if (stderr.length < STDERR_MAX) stderr += text;
  });
  let inputError: unknown;
  const kill = () => {
    // zfs-fuse's daemon does the send/recv on a copy of the pipe: only closing our end of it (EPIPE
    // for a send, EOF for a receive) stops it; killing the client alone leaves the dataset busy.
    stdout.destroy();
    child.stdin?.destroy();
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const hard = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    hard.unref();
    child.once('exit', () => clearTimeout(hard));
  };
  if (options.stdin && child.stdin) {
    child.stdin.on('error', () => undefined); // the tool's exit says what went wrong
    options.stdin.once('error', (error) => {
      inputError = error;
      kill();
    });
    options.stdin.pipe(child.stdin);
  }
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') {
        reject(
          new PloyzError(
            'STORAGE_TOOL_MISSING',
            `${tool.command} is not installed: install the Debian package ${tool.package}`,
            { details: { tool: tool.command, package: tool.package }, cause: error },
          ),
        );
      } else
        reject(new PloyzError('STORAGE_FAILED', `${command} failed: ${error.message}`, { cause: error }));
    });
    child.once('close', (code, signal) => {
      if (inputError !== undefined) reject(inputError);
      else if (code === 0) resolve();
      else {
        const said = stderr.trim() || `exit ${code ?? signal}`;
        reject(
          new PloyzError('STORAGE_FAILED', `${command} failed: ${said}`, {
            details: { command, stderr: said },
          }),
        );
      }
    });
  });
  exited.catch(() => undefined);
  return { stdout, exited, kill };
}
