/**
 * Running the storage tools: argument arrays through execFile (no shell), LC_ALL=C so output parses
 * the same everywhere, and one error map: a missing binary → STORAGE_TOOL_MISSING naming the Debian
 * package, "busy" → STORAGE_BUSY, anything else → STORAGE_FAILED with the command and its stderr.
 */
import { execFile } from 'node:child_process';
import { PloyzError } from '@ployz/types';

export interface Tool {
  command: string;
  /** The Debian package(s) that install it, as said to the operator. */
  package: string;
}

export const TOOLS = {
  zfs: { command: 'zfs', package: 'zfs-fuse (or zfsutils-linux for kernel ZFS)' },
  zpool: { command: 'zpool', package: 'zfs-fuse (or zfsutils-linux for kernel ZFS)' },
  btrfs: { command: 'btrfs', package: 'btrfs-progs' },
  tar: { command: 'tar', package: 'tar' },
} as const satisfies Record<string, Tool>;

export interface RunOptions {
  /** PATH to find the tool on (default: this process's). */
  searchPath?: string | undefined;
  timeoutMs?: number;
  /** Piped to the tool's stdin (e.g. an archive for tar). */
  stdin?: NodeJS.ReadableStream;
}

const DEFAULT_TIMEOUT_MS = 120_000;

export type ToolRunner = (tool: Tool, args: readonly string[]) => Promise<string>;

/** A runner bound to one PATH. */
export function toolRunner(options: RunOptions = {}): ToolRunner {
  return (tool, args) => runTool(tool, args, options);
}

export function runTool(tool: Tool, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const env = { ...process.env, LC_ALL: 'C', PATH: options.searchPath ?? process.env.PATH ?? '' };
  const command = [tool.command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = execFile(
      tool.command,
      args,
      { env, timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, shell: false },
      (error, stdout, stderr) => {
        if (!error) {
          resolve(stdout);
          return;
        }
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          reject(
            new PloyzError(
              'STORAGE_TOOL_MISSING',
              `${tool.command} is not installed: install the Debian package ${tool.package}`,
              { details: { tool: tool.command, package: tool.package }, cause: error },
            ),
          );
          return;
        }
        reject(toolFailure(command, stderr.trim() || error.message, error));
      },
    );
    if (options.stdin !== undefined && child.stdin !== null) {
      child.stdin.on('error', () => {}); // the tool's exit says what went wrong
      options.stdin.on('error', (error) => child.kill() && reject(error));
      options.stdin.pipe(child.stdin);
    }
  });
}

function toolFailure(command: string, said: string, cause: unknown): PloyzError {
  const details = { command, stderr: said };
  if (/please make sure that the zfs-fuse daemon is running/i.test(said)) {
    return new PloyzError(
      'STORAGE_FAILED',
      `${command}: the zfs-fuse daemon is not running; start it (zfs-fuse)`,
      {
        details,
        cause,
      },
    );
  }
  if (/\bbusy\b/i.test(said)) {
    return new PloyzError('STORAGE_BUSY', `${command}: ${said}; stop the volume's writers first`, {
      details,
      cause,
    });
  }
  return new PloyzError('STORAGE_FAILED', `${command} failed: ${said}`, { details, cause });
}
